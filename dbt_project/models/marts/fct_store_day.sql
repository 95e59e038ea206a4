-- Shop x day sales: receipts, units, net sales and the per-receipt averages. A day without receipt
-- lines has no row.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with receipts as (

    select * from {{ ref('int_receipts') }}
    where {{ partition_filter('day') }}

),

days as (

    select
        shop_id,
        date,
        count(*)                                    as receipts,
        sum(lines)::bigint                          as lines,
        sum(units)                                  as units,
        sum(sales)::decimal(18, 2)                  as sales,
        count(distinct customer_id)                 as loyalty_customers
    from receipts
    group by shop_id, date

),

final as (

    select
        shop_id,
        date,
        receipts,
        lines,
        units,
        sales,
        round(sales / receipts, 2)::decimal(18, 2)  as average_transaction_value,
        round(units / receipts, 4)                  as units_per_transaction,
        loyalty_customers
    from days

)

select * from final
