-- Every zone visit (all roles), one row per (shop, day, camera, zone, track, entry), with its store
-- visit, local times and whether it raised a loitering event. Customer zone marts downstream keep
-- is_customer (staff dropped), as the water-shop marts do with visit_log. Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with visits as (

    select *
    from {{ ref('stg_zone_visits') }}
    where {{ partition_filter('day') }}

),

loitering as (

    select shop_id, date, camera, zone, track_id, start_ts, min(alert_ts) as alert_ts
    from {{ ref('stg_loitering_events') }}
    where {{ partition_filter('day') }}
    group by all

),

final as (

    select
        visits.shop_id,
        visits.date,
        visits.camera,
        visits.zone,
        visits.kind,
        visits.category,
        visits.track_id,
        {{ store_visit_id('visits.identity', 'visits.camera', 'visits.track_id') }}
                                                    as store_visit_id,
        visits.identity,
        visits.role,
        visits.role <> 'staff'                      as is_customer,
        visits.enter_ts,
        visits.exit_ts,
        visits.enter_time,
        visits.exit_time,
        hour(visits.enter_time)::integer            as hour,
        visits.dwell_s,
        visits.exit_reason,
        loitering.alert_ts is not null              as is_loitering,
        loitering.alert_ts,
        visits.source
    from visits
    left join loitering
        on loitering.shop_id = visits.shop_id
       and loitering.date = visits.date
       and loitering.camera = visits.camera
       and loitering.zone = visits.zone
       and loitering.track_id = visits.track_id
       and loitering.start_ts = visits.enter_ts

)

select * from final
