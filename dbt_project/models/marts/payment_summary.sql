-- Shop x day x payment mode.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    payment_mode,
    count(*)                          as transactions,
    sum(number_of_cans)::bigint       as cans,
    sum(amount)::decimal(18, 2)       as amount,
    sum(paid_amount)::decimal(18, 2)  as paid_amount,
    sum(unpaid_amount)::decimal(18, 2) as unpaid_amount
from {{ ref('transactions') }}
where {{ partition_filter('day') }}
group by shop_id, date, payment_mode
