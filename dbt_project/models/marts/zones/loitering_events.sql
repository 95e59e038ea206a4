-- Loitering events of customers, VIPs and blocked people (staff excluded), one row per zone visit
-- that reached the zone's loitering_time, with local start/alert times and the store visit.
-- Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with events as (

    select *
    from {{ ref('stg_loitering_events') }}
    where role <> 'staff'
      and {{ partition_filter('day') }}

),

final as (

    select
        shop_id,
        date,
        camera,
        zone,
        kind,
        category,
        track_id,
        {{ store_visit_id() }}      as store_visit_id,
        identity,
        role,
        start_ts,
        alert_ts,
        exit_ts,
        start_time,
        alert_time,
        hour(start_time)::integer   as hour,
        dwell_s,
        loitering_time_s,
        source
    from events

)

select * from final
