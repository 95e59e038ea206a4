-- One row per loitering event (a zone visit that reached the zone's loitering_time) of the run's
-- scope, typed, with local start and alert times and the role its identity stands for.
-- Customer ids are read through stg_customer_merges (macros/surviving_customer_id.sql).
with source as (

    select *
    from {{ lake_source('loitering_events') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        shop_id::varchar                        as shop_id,
        date::date                              as date,
        camera::varchar                         as camera,
        zone::varchar                           as zone,
        kind::varchar                           as kind,
        category::varchar                       as category,
        track_id::varchar                       as track_id,
        {{ surviving_customer_id('source.identity') }} as identity,
        {{ identity_role('identity') }}         as role,
        start_ts::timestamptz                   as start_ts,
        alert_ts::timestamptz                   as alert_ts,
        exit_ts::timestamptz                    as exit_ts,
        {{ shop_local('start_ts') }}            as start_time,
        {{ shop_local('alert_ts') }}            as alert_time,
        dwell_s::double                         as dwell_s,
        loitering_time_s::double                as loitering_time_s,
        source::varchar                         as source
    from source
    qualify row_number() over (
        partition by shop_id, date, camera, zone, track_id, start_ts
        order by exit_ts desc nulls last
    ) = 1

)

select * from final
