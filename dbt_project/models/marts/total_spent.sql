-- Shop x customer lifetime totals "by registry customer" (int_transactions_attributed): a
-- transaction linked to a visit counts for that visit's registry customer, any other one for its
-- POS customer id (customer_id_kind says which). Unlinked walk-ins are excluded. A customer's totals
-- span every day, so a run recomputes all customers of its shop from the marts (not from the lake).
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

with sales as (

    select *
    from {{ ref('int_transactions_attributed') }}
    where buyer_id is not null

),

final as (

    select
        shop_id,
        buyer_id                              as customer_id,
        count(*)                              as transactions,
        sum(number_of_cans)::bigint           as cans,
        sum(amount)::decimal(18, 2)           as amount,
        sum(paid_amount)::decimal(18, 2)      as paid_amount,
        sum(unpaid_amount)::decimal(18, 2)    as unpaid_amount,
        min(timestamp_local)                  as first_purchase_at,
        max(timestamp_local)                  as last_purchase_at,
        buyer_id_kind                         as customer_id_kind
    from sales
    group by shop_id, buyer_id, buyer_id_kind

)

select * from final
