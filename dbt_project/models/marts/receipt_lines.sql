-- Every valid receipt line with the zone of its category at the time of the sale.
{{ config(
    unique_key=['shop_id', 'date', 'source_file', 'source_line'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with zoned as (

    select * from {{ ref('int_receipt_lines_zoned') }}
    where {{ partition_filter('day') }}

),

final as (

    select * from zoned

)

select * from final
