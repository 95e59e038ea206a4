-- One row per receipt: its lines, units and net sales (refund lines subtract).
with lines as (

    select * from {{ ref('stg_receipts') }}

),

final as (

    select
        shop_id,
        date,
        receipt_id,
        min(sold_at)                        as sold_at,
        count(*)                            as lines,
        sum(quantity)                       as units,
        sum(line_total)::decimal(18, 2)     as sales,
        any_value(customer_id)              as customer_id
    from lines
    group by shop_id, date, receipt_id

)

select * from final
