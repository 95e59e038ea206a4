-- Shop x customer x can size lifetime totals (walk-ins excluded); recomputed per shop.
{{ config(
    unique_key=['shop_id', 'customer_id', 'can_size'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

select
    shop_id,
    customer_id,
    can_size,
    sum(number_of_cans)::bigint  as cans,
    count(*)                     as transactions,
    sum(amount)::decimal(18, 2)  as amount
from {{ ref('transactions') }}
where customer_id is not null
  and {{ partition_filter('shop') }}
group by shop_id, customer_id, can_size
