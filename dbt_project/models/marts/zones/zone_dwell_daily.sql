-- Customer dwell per zone and shop-local day (staff excluded): visits, people, mean/median/p90 dwell
-- (quantiles interpolated linearly) and loitering events. Zones without customer visits that day
-- have no row. Rebuilt one shop-day at a time.
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
        camera,
        zone,
        any_value(kind)                             as kind,
        any_value(category)                         as category,
        count(*)                                    as visits,
        count(distinct store_visit_id)              as people,
        avg(dwell_s)                                as mean_dwell_s,
        quantile_cont(dwell_s, 0.5)                 as median_dwell_s,
        quantile_cont(dwell_s, 0.9)                 as p90_dwell_s,
        max(dwell_s)                                as max_dwell_s,
        sum(dwell_s)                                as total_dwell_s,
        count(*) filter (where is_loitering)        as loitering_events
    from visits
    group by shop_id, date, camera, zone

)

select * from final
