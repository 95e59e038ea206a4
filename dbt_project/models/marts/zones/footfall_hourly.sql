-- Entrance crossings of customers (staff excluded) per shop and shop-local hour, over every
-- entrance camera: entries (in), exits (out) and occupancy, the people inside at the end of the
-- hour by the day's running balance (entries - exits since the first crossing of the day, never
-- below 0). Hours without crossings have no row. Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with crossings as (

    select *
    from {{ ref('stg_footfall') }}
    where role <> 'staff'
      and {{ partition_filter('day') }}

),

hourly as (

    select
        shop_id,
        date,
        hour,
        count(*) filter (where direction = 'in')    as entries,
        count(*) filter (where direction = 'out')   as exits
    from crossings
    group by shop_id, date, hour

),

final as (

    select
        shop_id,
        date,
        hour,
        entries,
        exits,
        greatest(
            sum(entries - exits) over (partition by shop_id, date order by hour rows unbounded preceding),
            0
        )::bigint                                   as occupancy
    from hourly

)

select * from final
