-- monthly_revenue must equal daily_revenue summed per shop-month, within the run's shop-month.
{{ config(meta={'dagster': {'ref': {'name': 'monthly_revenue'}}}) }}  -- dagster-dbt: an asset check on monthly_revenue

with expected as (

    select
        shop_id,
        month,
        count(*)             as days_with_sales,
        sum(transactions)    as transactions,
        sum(cans)            as cans,
        sum(revenue)         as revenue,
        sum(paid_revenue)    as paid_revenue,
        sum(unpaid_revenue)  as unpaid_revenue
    from {{ ref('daily_revenue') }}
    where {{ partition_filter('month') }}
    group by shop_id, month

),

actual as (

    select *
    from {{ ref('monthly_revenue') }}
    where {{ partition_filter('month', date_column='month') }}

)

select
    coalesce(expected.shop_id, actual.shop_id)   as shop_id,
    coalesce(expected.month, actual.month)       as month,
    expected.revenue                             as expected_revenue,
    actual.revenue                               as actual_revenue
from expected
full outer join actual
    on expected.shop_id = actual.shop_id
   and expected.month = actual.month
where expected.shop_id is null
   or actual.shop_id is null
   or expected.days_with_sales is distinct from actual.days_with_sales
   or expected.transactions is distinct from actual.transactions
   or expected.cans is distinct from actual.cans
   or expected.revenue is distinct from actual.revenue
   or expected.paid_revenue is distinct from actual.paid_revenue
   or expected.unpaid_revenue is distinct from actual.unpaid_revenue
