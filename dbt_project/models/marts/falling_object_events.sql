-- Every item that fell from a shelf, one row per (shop, day, camera, event). Rebuilt one shop-day
-- at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with falls as (

    select *
    from {{ ref('stg_falling_object_events') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        shop_id,
        date,
        camera,
        zone,
        event_id,
        release_utc,
        landing_utc,
        epoch(landing_utc) - epoch(release_utc)     as fall_s,
        drop_height_px,
        blob_area_px,
        confidence,
        landed,
        x_px,
        y_px,
        source_path,
        still
    from falls

)

select * from final
