-- Shop x day x can size.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    can_size,
    sum(number_of_cans)::bigint  as cans,
    count(*)                     as transactions,
    sum(amount)::decimal(18, 2)  as amount
from {{ ref('transactions') }}
where {{ partition_filter('day') }}
group by shop_id, date, can_size
