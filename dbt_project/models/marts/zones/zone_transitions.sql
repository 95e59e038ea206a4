-- How customers (staff excluded) move between zones: per shop-day and camera, how often a track's
-- next zone visit (by entry time) after from_zone was in to_zone (a repeat visit of the same zone
-- is no transition), as the lake's zone_transitions counts them but without staff.
-- Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with visits as (

    select *
    from {{ ref('zone_visits') }}
    where is_customer
      and {{ partition_filter('day') }}

),

steps as (

    select
        shop_id,
        date,
        camera,
        store_visit_id,
        zone                                        as from_zone,
        lead(zone) over (
            partition by shop_id, date, camera, track_id order by enter_ts, zone
        )                                           as to_zone
    from visits

),

final as (

    select
        shop_id,
        date,
        camera,
        from_zone,
        to_zone,
        count(*)                                    as transitions,
        count(distinct store_visit_id)              as people
    from steps
    where to_zone is not null
      and to_zone <> from_zone
    group by shop_id, date, camera, from_zone, to_zone

)

select * from final
