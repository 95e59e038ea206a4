-- The audit of customer merges (identity.merges): which customer ids were found to be one person,
-- the id they are now read as, when and on what evidence. Recomputed per shop.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

select *
from {{ ref('stg_customer_merges') }}
where {{ partition_filter('shop') }}
