-- Customer visits (staff excluded) per shop, day and hour of entry (shop-local). A visit counts
-- once, in the hour it started; hours without visits have no row. Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    hour,
    count(*)                      as visits,
    count(distinct customer_id)   as unique_customers,
    avg(duration_s)               as avg_duration_s
from {{ ref('visit_log') }}
where is_customer
  and {{ partition_filter('day') }}
group by shop_id, date, hour
