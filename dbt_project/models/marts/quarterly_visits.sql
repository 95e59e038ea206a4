-- Shop x quarter customer-visit totals (staff excluded). Distinct customers are not additive over
-- days, so they are recounted from visit_log; a customer is new in the quarter of their first visit
-- ever at the shop. A run rewrites its shop's quarter and every later quarter of that shop.
{{ config(
    unique_key=['shop_id', 'quarter'],
    pre_hook="{{ delete_onward_scope('quarter', date_column='quarter') }}",
) }}

with visits as (

    select *, date_trunc('quarter', date)::date as quarter
    from {{ ref('int_customer_visits') }}
    where {{ onward_filter('quarter') }}

)

select
    visits.shop_id,
    visits.quarter,
    count(*)                                                                              as visits,
    count(distinct visits.customer_id)                                                    as unique_customers,
    count(distinct visits.customer_id) filter (where visits.first_date >= visits.quarter) as new_customers,
    count(distinct visits.customer_id) filter (where visits.first_date < visits.quarter)  as returning_customers,
    count(distinct visits.date)                                                           as days_with_visits,
    avg(visits.duration_s)                                                                as avg_duration_s
from visits
group by visits.shop_id, visits.quarter
