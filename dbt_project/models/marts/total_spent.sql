-- Shop x customer lifetime totals (walk-ins excluded). A customer's totals span every day, so a
-- run recomputes all customers of its shop from the transactions table (not from the lake).
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

select
    shop_id,
    customer_id,
    count(*)                              as transactions,
    sum(number_of_cans)::bigint           as cans,
    sum(amount)::decimal(18, 2)           as amount,
    sum(paid_amount)::decimal(18, 2)      as paid_amount,
    sum(unpaid_amount)::decimal(18, 2)    as unpaid_amount,
    min(timestamp_local)                  as first_purchase_at,
    max(timestamp_local)                  as last_purchase_at
from {{ ref('transactions') }}
where customer_id is not null
  and {{ partition_filter('shop') }}
group by shop_id, customer_id
