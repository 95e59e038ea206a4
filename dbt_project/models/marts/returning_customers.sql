-- Customers visiting on a day after their first visit ever at the shop (staff excluded). Like
-- daily_visits, a run rewrites its shop-day and that shop's later days.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_onward_scope('day') }}",
) }}

select
    visits.shop_id,
    visits.date,
    visits.customer_id,
    any_value(visits.first_date)        as first_visit_date,
    min(visits.entry_time)               as first_entry,
    count(*)                             as visits
from {{ ref('int_customer_visits') }} as visits
where visits.first_date < visits.date
  and {{ onward_filter('day', shop_column='visits.shop_id', date_column='visits.date') }}
group by visits.shop_id, visits.date, visits.customer_id
