-- Customers of a shop with two or more unpaid transactions; recomputed per shop.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

select
    shop_id,
    customer_id,
    count(*)                       as unpaid_count,
    sum(number_of_cans)::bigint    as unpaid_cans,
    sum(amount)::decimal(18, 2)    as amount_owed,
    min(timestamp_local)           as first_unpaid_at,
    max(timestamp_local)           as last_unpaid_at
from {{ ref('unpaid') }}
where customer_id is not null
  and {{ partition_filter('shop') }}
group by shop_id, customer_id
having count(*) >= 2
