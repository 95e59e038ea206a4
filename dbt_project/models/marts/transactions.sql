-- Every transaction, one row per (shop, day, bill). Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select *
from {{ ref('int_transactions_cleaned') }}
where {{ partition_filter('day') }}
