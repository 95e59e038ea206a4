-- One row per fall of the run's scope, typed. A fall listed twice in one camera-day file keeps its
-- most confident row.
with source as (

    select *
    from {{ lake_source('falling_object_events') }}
    where {{ partition_filter('day') }}

)

select
    shop_id::varchar                as shop_id,
    date::date                      as date,
    camera::varchar                 as camera,
    zone::varchar                   as zone,
    event_id::varchar               as event_id,
    release_utc::timestamptz        as release_utc,
    landing_utc::timestamptz        as landing_utc,
    drop_height_px::double          as drop_height_px,
    blob_area_px::double            as blob_area_px,
    confidence::double              as confidence,
    landed::boolean                 as landed,
    x_px::double                    as x_px,
    y_px::double                    as y_px,
    source_path::varchar            as source_path,
    still::varchar                  as still
from source
qualify row_number() over (
    partition by shop_id, date, camera, event_id
    order by confidence desc nulls last
) = 1
