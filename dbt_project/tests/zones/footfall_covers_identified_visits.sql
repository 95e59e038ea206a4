-- Everybody recognised in the store came in through an entrance: on a shop-day with entrance
-- crossings, the entries counted (footfall_hourly) are at least the customers' store visits with
-- an identity (store_visits). Shop-days without any crossing (no entrance camera) are not judged.
-- A warning: a tracker can miss someone at the door.
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'footfall_hourly'}}}) }}  -- dagster-dbt: an asset check on footfall_hourly

with entries as (

    select shop_id, date, sum(entries) as entries
    from {{ ref('footfall_hourly') }}
    where {{ partition_filter('day') }}
    group by shop_id, date

),

identified as (

    select shop_id, date, count(*) as identified_visits
    from {{ ref('store_visits') }}
    where is_customer
      and identity is not null
      and {{ partition_filter('day') }}
    group by shop_id, date

)

select entries.shop_id, entries.date, entries.entries, identified.identified_visits
from entries
join identified
    on identified.shop_id = entries.shop_id
   and identified.date = entries.date
where entries.entries < identified.identified_visits
