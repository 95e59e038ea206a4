-- One row per valid receipt line of the run's scope, typed. `sold_at` is the till's local time;
-- money is decimal(18, 2) so sums are exact. A line is identified by where it was read from.
with source as (

    select *
    from {{ lake_source('receipts') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        shop_id::varchar                                  as shop_id,
        date::date                                        as date,
        source_file::varchar                              as source_file,
        source_line::integer                              as source_line,
        receipt_id::varchar                               as receipt_id,
        "timestamp"::timestamp                            as sold_at,
        hour("timestamp")::integer                        as hour,
        till::varchar                                     as till,
        customer_id::varchar                              as customer_id,
        payment_mode::varchar                             as payment_mode,
        product_id::varchar                               as product_id,
        product_name::varchar                             as product_name,
        category::varchar                                 as category,
        quantity::double                                  as quantity,
        round(unit_price, 2)::decimal(18, 2)              as unit_price,
        round(coalesce(discount, 0), 2)::decimal(18, 2)   as discount,
        round(line_total, 2)::decimal(18, 2)              as line_total
    from source

)

select * from final
