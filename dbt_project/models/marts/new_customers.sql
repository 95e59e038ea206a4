-- Customers on the day of their first visit ever at the shop (staff excluded); the other half of
-- int_customer_days is returning_customers. Like daily_visits, a run rewrites its shop-day and
-- that shop's later days.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_onward_scope('day') }}",
) }}

with customer_days as (

    select *
    from {{ ref('int_customer_days') }}
    where is_first_visit_day
      and {{ onward_filter('day') }}

),

final as (

    select shop_id, date, customer_id, first_entry, visits
    from customer_days

)

select * from final
