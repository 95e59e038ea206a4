-- Shop x month customer-visit totals (staff excluded). Distinct customers are not additive over
-- days, so they are recounted from visit_log; a customer is new in the month of their first visit
-- ever at the shop. A run rewrites its shop's month and every later month of that shop.
{{ config(
    unique_key=['shop_id', 'month'],
    pre_hook="{{ delete_onward_scope('month', date_column='month') }}",
) }}

with visits as (

    select *, date_trunc('month', date)::date as month
    from {{ ref('int_customer_visits') }}
    where {{ onward_filter('month') }}

)

select
    visits.shop_id,
    visits.month,
    date_trunc('quarter', visits.month)::date                                          as quarter,
    count(*)                                                                              as visits,
    count(distinct visits.customer_id)                                                    as unique_customers,
    count(distinct visits.customer_id) filter (where visits.first_date >= visits.month) as new_customers,
    count(distinct visits.customer_id) filter (where visits.first_date < visits.month)  as returning_customers,
    count(distinct visits.date)                                                           as days_with_visits,
    avg(visits.duration_s)                                                                as avg_duration_s
from visits
group by visits.shop_id, visits.month
