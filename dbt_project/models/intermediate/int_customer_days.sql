-- One row per shop, day and identified customer with a customer visit that day, and whether the
-- day was the customer's first visit ever at the shop: new_customers and returning_customers are
-- its two halves.
{{ config(materialized='ephemeral') }}

with visits as (

    select *
    from {{ ref('int_customer_visits') }}
    where customer_id is not null

),

final as (

    select
        shop_id,
        date,
        customer_id,
        any_value(first_date)          as first_visit_date,
        any_value(first_date) = date   as is_first_visit_day,
        min(entry_time)                as first_entry,
        count(*)                       as visits
    from visits
    group by shop_id, date, customer_id

)

select * from final
