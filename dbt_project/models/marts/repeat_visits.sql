-- The rows of customer_visit_counts with two or more visits; recomputed per shop.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

select *
from {{ ref('customer_visit_counts') }}
where visits >= 2
  and {{ partition_filter('shop') }}
