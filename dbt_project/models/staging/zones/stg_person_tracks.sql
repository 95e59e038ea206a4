-- One row per person track of the run's scope (camera-day files), typed, with the role its
-- identity stands for. A track listed twice in one camera-day keeps its longest row.
-- Customer ids are read through stg_customer_merges (macros/surviving_customer_id.sql).
with source as (

    select *
    from {{ lake_source('person_tracks') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        shop_id::varchar                        as shop_id,
        date::date                              as date,
        camera::varchar                         as camera,
        track_id::varchar                       as track_id,
        {{ surviving_customer_id('source.identity') }} as identity,
        {{ identity_role('identity') }}         as role,
        start_ts::timestamptz                   as start_ts,
        end_ts::timestamptz                     as end_ts,
        {{ shop_local('start_ts') }}            as start_time,
        {{ shop_local('end_ts') }}              as end_time,
        coalesce(duration_s::double, epoch(end_ts::timestamptz) - epoch(start_ts::timestamptz))
                                                as duration_s,
        observations::bigint                    as observations,
        source::varchar                         as source
    from source
    qualify row_number() over (
        partition by shop_id, date, camera, track_id
        order by end_ts desc nulls last, start_ts nulls last
    ) = 1

)

select * from final
