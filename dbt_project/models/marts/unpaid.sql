-- Every unpaid transaction (walk-ins included, with a null customer_id).
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    transaction_id,
    timestamp_local,
    customer_id,
    is_walk_in,
    payment_mode,
    can_size,
    number_of_cans,
    amount
from {{ ref('transactions') }}
where payment_status = 'Unpaid'
  and {{ partition_filter('day') }}
