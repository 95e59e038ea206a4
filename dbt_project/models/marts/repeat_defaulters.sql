-- Customers of a shop with two or more unpaid transactions, "by registry customer" like
-- total_spent: a bill linked to a visit counts for the visit's registry customer, any other one
-- for its POS customer id (customer_id_kind). Recomputed per shop.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

with unpaid as (

    select
        unpaid.*,
        coalesce(links.customer_id, unpaid.customer_id)                             as buyer_id,
        case when links.customer_id is not null then 'registry' else 'pos' end      as buyer_id_kind
    from {{ ref('unpaid') }} as unpaid
    left join {{ ref('transaction_visit_links') }} as links
        on links.shop_id = unpaid.shop_id
       and links.date = unpaid.date
       and links.transaction_id = unpaid.transaction_id
       and links.visit_id is not null
    where {{ partition_filter('shop', shop_column='unpaid.shop_id') }}

)

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
where buyer_id is not null
group by shop_id, buyer_id, buyer_id_kind
having count(*) >= 2
