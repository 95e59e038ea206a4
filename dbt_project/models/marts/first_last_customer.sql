-- Per shop-day, the first customer in and the last customer out (staff excluded): the detected
-- opening and closing times. Rebuilt one shop-day at a time; a day without customer visits has no row.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    min(entry_time)                                                   as first_entry,
    max(exit_time)                                                    as last_exit,
    first(customer_id order by entry_time, visit_id)                  as first_customer_id,
    first(customer_id order by exit_time desc, visit_id)              as last_customer_id,
    first(visit_id order by entry_time, visit_id)                     as first_visit_id,
    first(visit_id order by exit_time desc, visit_id)                 as last_visit_id,
    count(*)                                                          as visits
from {{ ref('visit_log') }}
where is_customer
  and {{ partition_filter('day') }}
group by shop_id, date
