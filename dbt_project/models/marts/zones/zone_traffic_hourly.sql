-- Customer zone visits (staff excluded) per zone and shop-local hour of entry: a visit counts once,
-- in the hour it started. Hours without visits have no row. Rebuilt one shop-day at a time.
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

final as (

    select
        shop_id,
        date,
        hour,
        camera,
        zone,
        any_value(kind)                     as kind,
        count(*)                            as visits,
        count(distinct store_visit_id)      as people,
        avg(dwell_s)                        as mean_dwell_s,
        sum(dwell_s)                        as total_dwell_s
    from visits
    group by shop_id, date, hour, camera, zone

)

select * from final
