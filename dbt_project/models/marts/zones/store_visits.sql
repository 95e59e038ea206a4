-- One row per store visit (all roles): every person track of one identity on one shop-day, on any
-- camera, is one visit; an anonymous track is its own. With its span, cameras, and the zones it
-- visited. Customer figures drop is_customer = false (staff). Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with tracks as (

    select *
    from {{ ref('int_store_visit_tracks') }}
    where {{ partition_filter('day') }}

),

zone_visits as (

    select *
    from {{ ref('zone_visits') }}
    where {{ partition_filter('day') }}

),

visit_spans as (

    select
        shop_id,
        date,
        store_visit_id,
        any_value(identity)                                 as identity,
        any_value(role)                                     as role,
        bool_and(is_customer)                               as is_customer,
        string_agg(distinct camera, ',' order by camera)    as cameras,
        count(*)                                            as tracks,
        min(start_ts)                                       as start_ts,
        max(end_ts)                                         as end_ts,
        min(start_time)                                     as start_time,
        max(end_time)                                       as end_time
    from tracks
    group by shop_id, date, store_visit_id

),

visit_zones as (

    select
        shop_id,
        date,
        store_visit_id,
        string_agg(distinct zone, ',' order by zone)        as zones_visited,
        count(*)                                            as zone_visits,
        sum(dwell_s)                                        as zone_dwell_s,
        count(*) filter (where is_loitering)                as loitering_events
    from zone_visits
    group by shop_id, date, store_visit_id

),

final as (

    select
        visit_spans.shop_id,
        visit_spans.date,
        visit_spans.store_visit_id,
        visit_spans.identity,
        visit_spans.role,
        visit_spans.is_customer,
        visit_spans.cameras,
        visit_spans.tracks,
        visit_spans.start_ts,
        visit_spans.end_ts,
        visit_spans.start_time,
        visit_spans.end_time,
        epoch(visit_spans.end_ts) - epoch(visit_spans.start_ts)  as duration_s,
        visit_zones.zones_visited,
        coalesce(visit_zones.zone_visits, 0)                     as zone_visits,
        coalesce(visit_zones.zone_dwell_s, 0)                    as zone_dwell_s,
        coalesce(visit_zones.loitering_events, 0)                as loitering_events
    from visit_spans
    left join visit_zones
        on visit_zones.shop_id = visit_spans.shop_id
       and visit_zones.date = visit_spans.date
       and visit_zones.store_visit_id = visit_spans.store_visit_id

)

select * from final
