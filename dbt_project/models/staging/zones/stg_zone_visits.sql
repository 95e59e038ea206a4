-- One row per continuous presence of one person track in one zone, of the run's scope, typed;
-- local entry/exit times in the shop's time zone, the role its identity stands for. A visit
-- listed twice (same camera, zone, track and entry) keeps its longest row.
-- Customer ids are read through stg_customer_merges (macros/surviving_customer_id.sql).
with source as (

    select *
    from {{ lake_source('zone_visits') }}
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
        enter_ts::timestamptz                   as enter_ts,
        exit_ts::timestamptz                    as exit_ts,
        {{ shop_local('enter_ts') }}            as enter_time,
        {{ shop_local('exit_ts') }}             as exit_time,
        coalesce(dwell_s::double, epoch(exit_ts::timestamptz) - epoch(enter_ts::timestamptz))
                                                as dwell_s,
        exit_reason::varchar                    as exit_reason,
        source::varchar                         as source
    from source
    qualify row_number() over (
        partition by shop_id, date, camera, zone, track_id, enter_ts
        order by exit_ts desc nulls last
    ) = 1

)

select * from final
