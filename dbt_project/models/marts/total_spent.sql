-- Shop x customer lifetime totals "by registry customer": a transaction linked to a visit
-- (transaction_visit_links) counts for that visit's registry customer, any other one for its POS
-- customer id (customer_id_kind says which). Unlinked walk-ins are excluded. A customer's totals
-- span every day, so a run recomputes all customers of its shop from the marts (not from the lake).
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

with sales as (

    select
        transactions.*,
        coalesce(links.customer_id, transactions.customer_id)                       as buyer_id,
        case when links.customer_id is not null then 'registry' else 'pos' end      as buyer_id_kind
    from {{ ref('transactions') }} as transactions
    left join {{ ref('transaction_visit_links') }} as links
        on links.shop_id = transactions.shop_id
       and links.date = transactions.date
       and links.transaction_id = transactions.transaction_id
       and links.visit_id is not null
    where {{ partition_filter('shop', shop_column='transactions.shop_id') }}

)

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
where buyer_id is not null
group by shop_id, buyer_id, buyer_id_kind
