-- Shop x day x hour x zone sales of the zone's categories (zoned at the time of each sale). Hours
-- in which a zone sold nothing have no row; lines of categories in no zone are left out.
{{ config(
    unique_key=['shop_id', 'date', 'hour', 'zone'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with lines as (

    select * from {{ ref('int_receipt_lines_zoned') }}
    where {{ partition_filter('day') }}
      and zone is not null

),

final as (

    select
        shop_id,
        date,
        hour,
        zone,
        count(distinct receipt_id)                  as receipts,
        count(*)                                    as lines,
        sum(quantity)                               as units,
        sum(line_total)::decimal(18, 2)             as sales
    from lines
    group by shop_id, date, hour, zone

)

select * from final
