-- Every loitering event is a presence that reached the zone's loitering_time: it starts with a zone
-- visit of the same camera, zone and track entered at start_ts, ends (exit_ts) no earlier than that
-- visit (a presence goes on across short tracking breaks, into later visits), alert_ts =
-- start_ts + loitering_time_s no later than exit_ts, and its dwell at least loitering_time_s.
-- Returns the events that break it. A warning: Frigate's own events may disagree with our visits.
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'loitering_events'}}}) }}  -- dagster-dbt: an asset check on loitering_events

select
    events.shop_id,
    events.date,
    events.camera,
    events.zone,
    events.track_id,
    events.start_ts,
    events.alert_ts,
    events.exit_ts,
    visits.exit_ts      as visit_exit_ts,
    visits.dwell_s      as visit_dwell_s
from {{ ref('loitering_events') }} as events
left join {{ ref('zone_visits') }} as visits
    on visits.shop_id = events.shop_id
   and visits.date = events.date
   and visits.camera = events.camera
   and visits.zone = events.zone
   and visits.track_id = events.track_id
   and visits.enter_ts = events.start_ts
where {{ partition_filter('day', shop_column='events.shop_id', date_column='events.date') }}
  and (
        visits.track_id is null
     or events.exit_ts < visits.exit_ts
     or events.alert_ts > events.exit_ts
     or abs(epoch(events.alert_ts) - epoch(events.start_ts) - events.loitering_time_s) > 0.001
     or events.dwell_s < events.loitering_time_s - 0.001
  )
