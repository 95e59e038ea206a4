-- Every zone visit of the run's scope has its times, exits at or after it enters, and its dwell_s
-- is exit_ts - enter_ts (to the millisecond). Returns the bad visits.
{{ config(meta={'dagster': {'ref': {'name': 'zone_visits'}}}) }}  -- dagster-dbt: an asset check on zone_visits

select shop_id, date, camera, zone, track_id, enter_ts, exit_ts, dwell_s
from {{ ref('zone_visits') }}
where {{ partition_filter('day') }}
  and (
        enter_ts is null
     or exit_ts is null
     or exit_ts < enter_ts
     or dwell_s is null
     or abs(dwell_s - (epoch(exit_ts) - epoch(enter_ts))) > 0.001
  )
