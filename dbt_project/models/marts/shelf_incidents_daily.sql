-- Falls per shop, day and shelf zone: how many, how high, how sure. Zones without a fall that day
-- have no row. Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with falls as (

    select *
    from {{ ref('falling_object_events') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        shop_id,
        date,
        camera,
        zone,
        count(*)                                    as falls,
        count(*) filter (where not landed)          as fell_out_of_zone,
        max(drop_height_px)                         as max_drop_height_px,
        avg(drop_height_px)                         as mean_drop_height_px,
        avg(confidence)                             as mean_confidence,
        min(release_utc)                            as first_release_utc,
        max(release_utc)                            as last_release_utc
    from falls
    group by shop_id, date, camera, zone

)

select * from final
