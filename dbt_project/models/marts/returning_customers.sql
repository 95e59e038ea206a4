-- Customers visiting on a day after their first visit ever at the shop (staff excluded). Like
-- daily_visits, a run rewrites its shop-day and that shop's later days.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_onward_scope('day') }}",
) }}

with first_visits as (

    select shop_id, customer_id, min(date) as first_date
    from {{ ref('visit_log') }}
    where is_customer
      and customer_id is not null
      and {{ partition_filter('shop') }}
    group by shop_id, customer_id

)

select
    visits.shop_id,
    visits.date,
    visits.customer_id,
    any_value(first_visits.first_date)   as first_visit_date,
    min(visits.entry_time)               as first_entry,
    count(*)                             as visits
from {{ ref('visit_log') }} as visits
join first_visits
    on first_visits.shop_id = visits.shop_id
   and first_visits.customer_id = visits.customer_id
   and first_visits.first_date < visits.date
where visits.is_customer
  and {{ onward_filter('day', shop_column='visits.shop_id', date_column='visits.date') }}
group by visits.shop_id, visits.date, visits.customer_id
