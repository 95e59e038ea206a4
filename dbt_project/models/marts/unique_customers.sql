-- Every customer of a shop seen on camera (staff excluded), with first and last sighting;
-- recomputed per shop from visit_log.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

select
    shop_id,
    customer_id,
    first(role order by entry_time desc, visit_id desc)   as role,
    min(entry_time)                                       as first_seen,
    max(exit_time)                                        as last_seen,
    count(*)                                              as visits,
    count(distinct date)                                  as days_visited
from {{ ref('visit_log') }}
where is_customer
  and customer_id is not null
  and {{ partition_filter('shop') }}
group by shop_id, customer_id
