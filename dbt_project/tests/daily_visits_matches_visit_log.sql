-- daily_visits must equal a fresh count of visit_log's customer visits (staff excluded),
-- shop-day by shop-day, within the run's scope. Returns the shop-days that differ.
{{ config(meta={'dagster': {'ref': {'name': 'daily_visits'}}}) }}  -- dagster-dbt: an asset check on daily_visits

with expected as (

    select
        shop_id,
        date,
        count(*)                      as visits,
        count(distinct customer_id)   as unique_customers
    from {{ ref('visit_log') }}
    where is_customer
      and {{ partition_filter('day') }}
    group by shop_id, date

),

actual as (

    select *
    from {{ ref('daily_visits') }}
    where {{ partition_filter('day') }}

)

select
    coalesce(expected.shop_id, actual.shop_id)   as shop_id,
    coalesce(expected.date, actual.date)         as date,
    expected.visits                              as expected_visits,
    actual.visits                                as actual_visits
from expected
full outer join actual
    on expected.shop_id = actual.shop_id
   and expected.date = actual.date
where expected.shop_id is null
   or actual.shop_id is null
   or expected.visits is distinct from actual.visits
   or expected.unique_customers is distinct from actual.unique_customers
   or actual.new_customers + actual.returning_customers <> actual.unique_customers
