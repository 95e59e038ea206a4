-- Shop x day behaviour beside sales: store visitors (customer entries at the entrances, footfall),
-- customers seen in a zone past the entrance (zone kind other than entrance), receipts and sales (fct_store_day), and the ratios between them.
-- A day with only footfall or only receipts still has a row; a ratio whose denominator is 0 is null.
-- Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with footfall as (

    select *
    from {{ ref('footfall_hourly') }}
    where {{ partition_filter('day') }}

),

zone_visits as (

    select *
    from {{ ref('zone_visits') }}
    where is_customer
      and kind <> 'entrance'
      and {{ partition_filter('day') }}

),

store_days as (

    select *
    from {{ ref('fct_store_day') }}
    where {{ partition_filter('day') }}

),

entries as (

    select shop_id, date, sum(entries)::bigint as store_visitors
    from footfall
    group by shop_id, date

),

zone_shoppers as (

    select shop_id, date, count(distinct store_visit_id) as zone_visitors
    from zone_visits
    group by shop_id, date

),

behaviour as (

    select
        coalesce(entries.shop_id, zone_shoppers.shop_id)    as shop_id,
        coalesce(entries.date, zone_shoppers.date)          as date,
        coalesce(entries.store_visitors, 0)                 as store_visitors,
        coalesce(zone_shoppers.zone_visitors, 0)            as zone_visitors
    from entries
    full outer join zone_shoppers
        on  zone_shoppers.shop_id = entries.shop_id
        and zone_shoppers.date = entries.date

),

joined as (

    select
        coalesce(behaviour.shop_id, store_days.shop_id)     as shop_id,
        coalesce(behaviour.date, store_days.date)           as date,
        coalesce(behaviour.store_visitors, 0)               as store_visitors,
        coalesce(behaviour.zone_visitors, 0)                as zone_visitors,
        coalesce(store_days.receipts, 0)                    as receipts,
        coalesce(store_days.units, 0)::double               as units,
        coalesce(store_days.sales, 0)::decimal(18, 2)       as sales,
        store_days.average_transaction_value,
        store_days.units_per_transaction
    from behaviour
    full outer join store_days
        on  store_days.shop_id = behaviour.shop_id
        and store_days.date = behaviour.date

),

final as (

    select
        shop_id,
        date,
        store_visitors,
        zone_visitors,
        receipts,
        units,
        sales,
        average_transaction_value,
        units_per_transaction,
        case when store_visitors > 0 then round(receipts / store_visitors, 4) end       as conversion_rate,
        case when store_visitors > 0 then round(sales / store_visitors, 4) end          as shopper_yield,
        case when store_visitors > 0 then round(zone_visitors / store_visitors, 4) end  as zone_entry_rate
    from joined

)

select * from final
