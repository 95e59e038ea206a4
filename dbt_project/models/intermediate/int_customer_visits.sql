-- Customer visits (staff excluded; vip/blocked count as customers) of the run's shop, each with the
-- customer's first visit date ever at that shop: what new vs returning is decided by.
{{ config(materialized='ephemeral') }}

with visits as (

    select *
    from {{ ref('visit_log') }}
    where is_customer
      and {{ partition_filter('shop') }}

),

first_visits as (

    select shop_id, customer_id, min(date) as first_date
    from visits
    where customer_id is not null
    group by shop_id, customer_id

)

select
    visits.*,
    first_visits.first_date
from visits
left join first_visits
    on first_visits.shop_id = visits.shop_id
   and first_visits.customer_id = visits.customer_id
