-- Shop x customer lifetime visit counts (staff excluded); recomputed per shop from visit_log.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

select
    shop_id,
    customer_id,
    count(*)               as visits,
    min(entry_time)        as first_visit,
    max(entry_time)        as last_visit,
    avg(duration_s)        as avg_duration_s,
    count(*) filter (where transactions > 0)   as visits_with_purchase
from {{ ref('visit_log') }}
where is_customer
  and customer_id is not null
  and {{ partition_filter('shop') }}
group by shop_id, customer_id
