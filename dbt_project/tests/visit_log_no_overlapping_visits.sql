-- One person cannot be in two visits at once: no two visits of the same person at a shop (same
-- customer id, or same person_key for staff) may overlap in time (UTC); touching is fine. Checks
-- the run's visits against the shop's visits of the same and neighbouring days. A warning, not
-- an error: the visits asset has its own check, and a merge of two look-alike people must not
-- stop the marts.
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'visit_log'}}}) }}  -- dagster-dbt: an asset check on visit_log

select
    a.shop_id,
    coalesce(a.customer_id, a.person_key)   as person,
    a.visit_id      as visit_id,
    b.visit_id      as overlapping_visit_id,
    a.entry_time,
    a.exit_time,
    b.entry_time    as overlapping_entry_time,
    b.exit_time     as overlapping_exit_time
from {{ ref('visit_log') }} as a
join {{ ref('visit_log') }} as b
    on b.shop_id = a.shop_id
   and coalesce(b.customer_id, b.person_key) = coalesce(a.customer_id, a.person_key)
   and b.visit_id <> a.visit_id
   and b.date between a.date - 1 and a.date + 1
   and b.entry_utc < a.exit_utc
   and a.entry_utc < b.exit_utc
where coalesce(a.customer_id, a.person_key) is not null
  and {{ partition_filter('day', shop_column='a.shop_id', date_column='a.date') }}
  and {{ partition_filter('shop', shop_column='b.shop_id') }}
