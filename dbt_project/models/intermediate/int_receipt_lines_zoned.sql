-- Each receipt line with the zone its category was placed in at the time of the sale: the
-- category -> zone row whose validity [valid_from, valid_to) holds sold_at. Null zone: the category
-- was in no zone then.
with lines as (

    select * from {{ ref('stg_receipts') }}

),

zones as (

    select * from {{ ref('stg_category_zones') }}

),

zoned as (

    select
        lines.*,
        zones.zone
    from lines
    left join zones
        on  zones.shop_id = lines.shop_id
        and zones.category = lines.category
        and lines.sold_at >= zones.valid_from
        and (zones.valid_to is null or lines.sold_at < zones.valid_to)

),

final as (

    select
        shop_id, date, source_file, source_line, receipt_id, sold_at, hour, till, customer_id, payment_mode,
        product_id, product_name, category, zone, quantity, unit_price, discount, line_total
    from zoned

)

select * from final
