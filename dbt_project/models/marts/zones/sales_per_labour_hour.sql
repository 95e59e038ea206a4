-- Shop x day x local hour: staff on the floor and their labour hours (observed on camera), beside the
-- hour's store visitors (footfall), receipts and sales, and sales per labour hour (STAR-style).
--
-- Labour comes from person tracks whose identity is a known staff member (face recognition, or
-- Frigate's sub_label mapped to staff/<name>). Staff leave the cameras' view (stockroom, breaks at
-- the back) and their tracks break, so a staff member's tracks of one day are chained into shifts:
-- a gap of at most `staff_shift_gap_minutes` (default 30) between one track's end and the next one's
-- start is still on shift. Each shift (clipped to the shop-local day) is spread over the clock hours it
-- overlaps. A full outer join: an hour with only staff, only visitors or only sales still has a row.
-- Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date', 'hour'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

{%- set gap_minutes = var('staff_shift_gap_minutes', 30) | float -%}
{%- if gap_minutes < 0 -%}
    {{ exceptions.raise_compiler_error("var staff_shift_gap_minutes must be >= 0") }}
{%- endif %}

with staff_tracks as (

    select shop_id, date, identity, start_ts, end_ts
    from {{ ref('stg_person_tracks') }}
    where role = 'staff'
      and start_ts is not null
      and end_ts >= start_ts
      and {{ partition_filter('day') }}

),

chained as (

    select
        *,
        max(end_ts) over (
            partition by shop_id, date, identity order by start_ts, end_ts
            rows between unbounded preceding and 1 preceding
        )                                                   as on_shift_until
    from staff_tracks

),

numbered as (

    select
        *,
        sum(case
                when on_shift_until is null
                  or start_ts > on_shift_until + to_seconds({{ gap_minutes * 60 }})
                then 1 else 0
            end) over (
            partition by shop_id, date, identity order by start_ts, end_ts rows unbounded preceding
        )                                                   as shift_no
    from chained

),

shifts as (

    select
        shop_id,
        date,
        identity,
        greatest({{ shop_local('min(start_ts)') }}, date::timestamp)                as shift_start,
        least({{ shop_local('max(end_ts)') }}, date::timestamp + interval 1 day)    as shift_end
    from numbered
    group by shop_id, date, identity, shift_no

),

shift_hours as (

    select
        shop_id,
        date,
        identity,
        shift_start,
        shift_end,
        unnest(generate_series(date_trunc('hour', shift_start), shift_end, interval 1 hour)) as hour_start
    from shifts
    where shift_end > shift_start

),

labour as (

    select
        shop_id,
        date,
        hour(hour_start)::integer                           as hour,
        count(distinct identity)                            as staff_on_floor,
        sum(epoch(least(shift_end, hour_start + interval 1 hour))
            - epoch(greatest(shift_start, hour_start))) / 3600.0    as labour_hours
    from shift_hours
    where hour_start < shift_end
    group by shop_id, date, hour(hour_start)

),

footfall as (

    select shop_id, date, hour, entries as store_visitors
    from {{ ref('footfall_hourly') }}
    where {{ partition_filter('day') }}

),

sales as (

    select
        shop_id,
        date,
        hour(sold_at)::integer                              as hour,
        count(*)                                            as receipts,
        sum(sales)::decimal(18, 2)                          as sales
    from {{ ref('int_receipts') }}
    where {{ partition_filter('day') }}
    group by shop_id, date, hour(sold_at)

),

hours as (

    select shop_id, date, hour from labour
    union
    select shop_id, date, hour from footfall
    union
    select shop_id, date, hour from sales

),

joined as (

    select
        hours.shop_id,
        hours.date,
        hours.hour,
        coalesce(labour.staff_on_floor, 0)                  as staff_on_floor,
        coalesce(labour.labour_hours, 0)                    as labour_hours,
        coalesce(footfall.store_visitors, 0)                as store_visitors,
        coalesce(sales.receipts, 0)                         as receipts,
        coalesce(sales.sales, 0)::decimal(18, 2)            as sales
    from hours
    left join labour using (shop_id, date, hour)
    left join footfall using (shop_id, date, hour)
    left join sales using (shop_id, date, hour)

),

final as (

    select
        shop_id,
        date,
        hour,
        staff_on_floor,
        round(labour_hours, 4)                                                        as labour_hours,
        store_visitors,
        receipts,
        sales,
        case when labour_hours > 0 then round(sales / labour_hours, 2) end            as sales_per_labour_hour,
        case when labour_hours > 0 then round(receipts / labour_hours, 4) end         as receipts_per_labour_hour,
        case when labour_hours > 0 then round(store_visitors / labour_hours, 4) end   as visitors_per_staff,
        case when store_visitors > 0 then round(receipts / store_visitors, 4) end     as conversion_rate
    from joined

)

select * from final
