-- sales_per_labour_hour against its inputs, one row per problem: a shop-day whose hours' receipts or
-- sales are not fct_store_day's, or whose store visitors are not the day's footfall entries; an hour
-- whose labour exceeds its staff headcount (a staff member works at most the whole hour) or has
-- labour without staff.
{{ config(meta={'dagster': {'ref': {'name': 'sales_per_labour_hour'}}}) }}  -- dagster-dbt: an asset check on sales_per_labour_hour

with hours as (

    select *
    from {{ ref('sales_per_labour_hour') }}
    where {{ partition_filter('day') }}

),

days as (

    select shop_id, date, sum(receipts) as receipts, sum(sales) as sales, sum(store_visitors) as store_visitors
    from hours
    group by shop_id, date

),

store_days as (

    select shop_id, date, receipts, sales
    from {{ ref('fct_store_day') }}
    where {{ partition_filter('day') }}

),

entries as (

    select shop_id, date, sum(entries) as store_visitors
    from {{ ref('footfall_hourly') }}
    where {{ partition_filter('day') }}
    group by shop_id, date

),

day_problems as (

    select
        coalesce(days.shop_id, store_days.shop_id, entries.shop_id)     as shop_id,
        coalesce(days.date, store_days.date, entries.date)              as date,
        null::integer                                                   as hour,
        'day totals differ from fct_store_day / footfall_hourly'        as problem
    from days
    full outer join store_days using (shop_id, date)
    full outer join entries using (shop_id, date)
    where coalesce(days.receipts, 0) <> coalesce(store_days.receipts, 0)
       or coalesce(days.sales, 0) <> coalesce(store_days.sales, 0)
       or coalesce(days.store_visitors, 0) <> coalesce(entries.store_visitors, 0)

),

hour_problems as (

    select shop_id, date, hour, 'labour_hours outside [0, staff_on_floor]' as problem
    from hours
    where labour_hours < 0
       or labour_hours > staff_on_floor
       or (labour_hours > 0 and staff_on_floor = 0)

)

select * from day_problems
union all
select * from hour_problems
