-- One track is in one zone once at a time: no two visits of the same track in the same zone
-- overlap (a visit entering while the previous one had not exited, touching included, as the
-- lake check zones.checks.overlapping_visits counts it). A warning: the lake asset has its own check.
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'zone_visits'}}}) }}  -- dagster-dbt: an asset check on zone_visits

select
    a.shop_id,
    a.date,
    a.camera,
    a.zone,
    a.track_id,
    a.enter_ts,
    a.exit_ts,
    b.enter_ts      as overlapping_enter_ts,
    b.exit_ts       as overlapping_exit_ts
from {{ ref('zone_visits') }} as a
join {{ ref('zone_visits') }} as b
    on b.shop_id = a.shop_id
   and b.date = a.date
   and b.camera = a.camera
   and b.zone = a.zone
   and b.track_id = a.track_id
   and b.enter_ts > a.enter_ts
   and b.enter_ts <= a.exit_ts
where {{ partition_filter('day', shop_column='a.shop_id', date_column='a.date') }}
