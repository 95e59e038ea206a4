-- daily_revenue must equal a fresh aggregate of transactions, shop-day by shop-day, within the
-- run's scope. Returns the shop-days that differ (or exist on one side only).
{{ config(meta={'dagster': {'ref': {'name': 'daily_revenue'}}}) }}  -- dagster-dbt: an asset check on daily_revenue

with expected as (

    select
        shop_id,
        date,
        count(*)                      as transactions,
        sum(number_of_cans)           as cans,
        sum(amount)                   as revenue,
        sum(paid_amount)              as paid_revenue,
        sum(unpaid_amount)            as unpaid_revenue,
        count(distinct customer_id)   as customers
    from {{ ref('transactions') }}
    where {{ partition_filter('day') }}
    group by shop_id, date

),

actual as (

    select *
    from {{ ref('daily_revenue') }}
    where {{ partition_filter('day') }}

)

select
    coalesce(expected.shop_id, actual.shop_id)   as shop_id,
    coalesce(expected.date, actual.date)         as date,
    expected.revenue                             as expected_revenue,
    actual.revenue                               as actual_revenue
from expected
full outer join actual
    on expected.shop_id = actual.shop_id
   and expected.date = actual.date
where expected.shop_id is null
   or actual.shop_id is null
   or expected.transactions is distinct from actual.transactions
   or expected.cans is distinct from actual.cans
   or expected.revenue is distinct from actual.revenue
   or expected.paid_revenue is distinct from actual.paid_revenue
   or expected.unpaid_revenue is distinct from actual.unpaid_revenue
   or expected.customers is distinct from actual.customers
