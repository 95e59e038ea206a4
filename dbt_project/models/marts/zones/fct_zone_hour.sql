-- Shop x day x local hour x zone: the zone's customers (staff excluded) and their dwell, beside the
-- sales of the zone's categories that hour. A full outer join: an hour with visitors but no sales,
-- or sales but no visitors, still has a row (the missing side is 0). Visits count in the hour they
-- started, on every camera that has the zone. Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date', 'hour', 'zone'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with zone_visits as (

    select *
    from {{ ref('zone_visits') }}
    where is_customer
      and {{ partition_filter('day') }}

),

zone_sales as (

    select *
    from {{ ref('zone_sales_hourly') }}
    where {{ partition_filter('day') }}

),

behaviour as (

    select
        shop_id,
        date,
        hour,
        zone,
        count(*)                                    as visits,
        count(distinct store_visit_id)              as visitors,
        sum(dwell_s)                                as total_dwell_s
    from zone_visits
    group by shop_id, date, hour, zone

),

joined as (

    select
        coalesce(behaviour.shop_id, zone_sales.shop_id)     as shop_id,
        coalesce(behaviour.date, zone_sales.date)           as date,
        coalesce(behaviour.hour, zone_sales.hour)           as hour,
        coalesce(behaviour.zone, zone_sales.zone)           as zone,
        coalesce(behaviour.visits, 0)                       as visits,
        coalesce(behaviour.visitors, 0)                     as visitors,
        coalesce(behaviour.total_dwell_s, 0)::double        as total_dwell_s,
        coalesce(zone_sales.receipts, 0)                    as receipts,
        coalesce(zone_sales.lines, 0)                       as lines,
        coalesce(zone_sales.units, 0)::double               as units,
        coalesce(zone_sales.sales, 0)::decimal(18, 2)       as sales
    from behaviour
    full outer join zone_sales
        on  zone_sales.shop_id = behaviour.shop_id
        and zone_sales.date = behaviour.date
        and zone_sales.hour = behaviour.hour
        and zone_sales.zone = behaviour.zone

),

final as (

    select
        shop_id,
        date,
        hour,
        zone,
        visits,
        visitors,
        total_dwell_s,
        case when visits > 0 then total_dwell_s / visits end           as mean_dwell_s,
        receipts,
        lines,
        units,
        sales,
        case when visitors > 0 then round(sales / visitors, 4) end      as sales_per_visitor
    from joined

)

select * from final
