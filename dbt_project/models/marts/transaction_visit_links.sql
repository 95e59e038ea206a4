-- Every POS transaction's link to a visit (or the reason it has none), one row per
-- (shop, day, bill). Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    transaction_id,
    timestamp_utc,
    visit_id,
    customer_id,
    person_key,
    role,
    pos_customer_id,
    link_confidence,
    visit_id is not null    as is_linked,
    reason
from {{ ref('stg_transaction_visit_links') }}
where {{ partition_filter('day') }}
