-- Shop x day customer-visit totals (staff excluded; vip/blocked count as customers). A customer
-- is new on the day of their first visit ever at the shop, returning on later days, so a run
-- rewrites its shop-day and that shop's later days (onward_filter). Days without customer visits
-- have no row.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_onward_scope('day') }}",
) }}

with visits as (

    select *
    from {{ ref('int_customer_visits') }}
    where {{ onward_filter('day') }}

)

select
    visits.shop_id,
    visits.date,
    date_trunc('month', visits.date)::date                                               as month,
    count(*)                                                                             as visits,
    count(distinct visits.customer_id)                                                   as unique_customers,
    count(distinct visits.customer_id) filter (where visits.first_date = visits.date) as new_customers,
    count(distinct visits.customer_id) filter (where visits.first_date < visits.date) as returning_customers,
    avg(visits.duration_s)                                                               as avg_duration_s,
    count(*) filter (where visits.transactions > 0)                                      as visits_with_purchase,
    count(*) filter (where visits.customer_id is null)                                   as unidentified_visits
from visits
group by visits.shop_id, visits.date
