-- Customers of a shop with two or more unpaid transactions, "by registry customer" like
-- total_spent (int_transactions_attributed): a bill linked to a visit counts for the visit's
-- registry customer, any other one for its POS customer id (customer_id_kind). Recomputed per shop.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

with unpaid as (

    select *
    from {{ ref('int_transactions_attributed') }}
    where payment_status = 'Unpaid'
      and buyer_id is not null

),

final as (

    select
        shop_id,
        buyer_id                       as customer_id,
        count(*)                       as unpaid_count,
        sum(number_of_cans)::bigint    as unpaid_cans,
        sum(amount)::decimal(18, 2)    as amount_owed,
        min(timestamp_local)           as first_unpaid_at,
        max(timestamp_local)           as last_unpaid_at,
        buyer_id_kind                  as customer_id_kind
    from unpaid
    group by shop_id, buyer_id, buyer_id_kind
    having count(*) >= 2

)

select * from final
