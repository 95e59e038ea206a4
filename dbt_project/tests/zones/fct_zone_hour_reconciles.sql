-- fct_zone_hour holds exactly the zone-hours of zone_sales_hourly and of the customer zone visits,
-- with their sales and visits: one row per key that is missing on either side or differs.
{{ config(meta={'dagster': {'ref': {'name': 'fct_zone_hour'}}}) }}  -- dagster-dbt: an asset check on fct_zone_hour

with sales as (

    select shop_id, date, hour, zone, sales, lines
    from {{ ref('zone_sales_hourly') }}
    where {{ partition_filter('day') }}

),

visits as (

    select shop_id, date, hour, zone, count(*) as visits, sum(dwell_s) as total_dwell_s
    from {{ ref('zone_visits') }}
    where is_customer
      and {{ partition_filter('day') }}
    group by shop_id, date, hour, zone

),

expected as (

    select
        coalesce(sales.shop_id, visits.shop_id)     as shop_id,
        coalesce(sales.date, visits.date)           as date,
        coalesce(sales.hour, visits.hour)           as hour,
        coalesce(sales.zone, visits.zone)           as zone,
        coalesce(sales.sales, 0)                    as sales,
        coalesce(sales.lines, 0)                    as lines,
        coalesce(visits.visits, 0)                  as visits,
        coalesce(visits.total_dwell_s, 0)           as total_dwell_s
    from sales
    full outer join visits using (shop_id, date, hour, zone)

),

actual as (

    select *
    from {{ ref('fct_zone_hour') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        coalesce(expected.shop_id, actual.shop_id)  as shop_id,
        coalesce(expected.date, actual.date)        as date,
        coalesce(expected.hour, actual.hour)        as hour,
        coalesce(expected.zone, actual.zone)        as zone,
        expected.sales                              as expected_sales,
        actual.sales                                as actual_sales,
        expected.visits                             as expected_visits,
        actual.visits                               as actual_visits
    from expected
    full outer join actual
        on  actual.shop_id = expected.shop_id
        and actual.date = expected.date
        and actual.hour = expected.hour
        and actual.zone = expected.zone
    where expected.shop_id is null
       or actual.shop_id is null
       or expected.sales is distinct from actual.sales
       or expected.lines is distinct from actual.lines
       or expected.visits is distinct from actual.visits
       or abs(expected.total_dwell_s - actual.total_dwell_s) > 1e-6

)

select * from final
