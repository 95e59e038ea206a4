-- fct_store_day_behaviour's receipts and sales are fct_store_day's and its store visitors the day's
-- footfall entries: one row per shop-day that is missing or differs. Days with zone visits only
-- (no receipts, no entries) may have a row with 0 on both.
{{ config(meta={'dagster': {'ref': {'name': 'fct_store_day_behaviour'}}}) }}  -- dagster-dbt: an asset check on fct_store_day_behaviour

with store_days as (

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

expected as (

    select
        coalesce(store_days.shop_id, entries.shop_id)   as shop_id,
        coalesce(store_days.date, entries.date)         as date,
        coalesce(store_days.receipts, 0)                as receipts,
        coalesce(store_days.sales, 0)                   as sales,
        coalesce(entries.store_visitors, 0)             as store_visitors
    from store_days
    full outer join entries using (shop_id, date)

),

actual as (

    select *
    from {{ ref('fct_store_day_behaviour') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        coalesce(expected.shop_id, actual.shop_id)  as shop_id,
        coalesce(expected.date, actual.date)        as date,
        expected.receipts                           as expected_receipts,
        actual.receipts                             as actual_receipts,
        expected.sales                              as expected_sales,
        actual.sales                                as actual_sales,
        expected.store_visitors                     as expected_store_visitors,
        actual.store_visitors                       as actual_store_visitors
    from expected
    full outer join actual
        on  actual.shop_id = expected.shop_id
        and actual.date = expected.date
    where (expected.shop_id is null and (actual.receipts <> 0 or actual.store_visitors <> 0))
       or actual.shop_id is null
       or (expected.shop_id is not null
           and (expected.receipts <> actual.receipts
                or expected.sales <> actual.sales
                or expected.store_visitors <> actual.store_visitors))

)

select * from final
