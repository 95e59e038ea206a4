-- The audit of customer merges (identity.merges): which customer ids were found to be one person,
-- the id they are now read as, when and on what evidence. Recomputed per shop from the lake.
{{ config(
    unique_key=['shop_id', 'customer_id'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

with resolved as (

    select shop_id, customer_id, surviving_id
    from {{ ref('stg_customer_merges') }}
    where {{ partition_filter('shop') }}

),

decided as (

    select
        shop_id::varchar          as shop_id,
        customer_id::varchar      as customer_id,
        surviving_id::varchar     as merged_into,
        date::date                as decided_on,
        first_seen::date          as first_seen,
        linkage::double           as linkage,
        runner_up::double         as runner_up,
        n_exemplars::integer      as n_exemplars,
        n_exemplars_surviving::integer as n_exemplars_surviving
    from {{ lake_source('customer_merges') }}
    where {{ partition_filter('shop') }}
    qualify row_number() over (partition by shop_id, customer_id order by date, surviving_id) = 1

),

final as (

    select
        decided.shop_id,
        decided.customer_id,
        resolved.surviving_id,
        decided.merged_into,
        decided.decided_on,
        decided.first_seen,
        decided.linkage,
        decided.runner_up,
        decided.n_exemplars,
        decided.n_exemplars_surviving
    from decided
    join resolved
        on resolved.shop_id = decided.shop_id
       and resolved.customer_id = decided.customer_id

)

select * from final
