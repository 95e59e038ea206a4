-- One row per entrance crossing (in/out) of the run's scope, typed, with the local time and hour
-- of the crossing and the role its identity stands for.
-- Customer ids are read through stg_customer_merges (macros/surviving_customer_id.sql).
with source as (

    select *
    from {{ lake_source('footfall') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        shop_id::varchar                        as shop_id,
        date::date                              as date,
        camera::varchar                         as camera,
        zone::varchar                           as zone,
        track_id::varchar                       as track_id,
        {{ surviving_customer_id('source.identity') }} as identity,
        {{ identity_role('identity') }}         as role,
        ts::timestamptz                         as ts,
        {{ shop_local('ts') }}                  as local_time,
        hour({{ shop_local('ts') }})::integer   as hour,
        direction::varchar                      as direction,
        source::varchar                         as source
    from source
    qualify row_number() over (
        partition by shop_id, date, camera, zone, track_id, ts, direction
        order by source
    ) = 1

)

select * from final
