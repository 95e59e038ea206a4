-- Every POS transaction's link to a visit (or the reason it has none), one row per
-- (shop, day, bill). Rebuilt one shop-day at a time. The customer id is read through
-- stg_customer_merges (macros/surviving_customer_id.sql), as the visit marts read it: a merged id
-- appears as the id it merged into.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with links as (

    select *
    from {{ ref('stg_transaction_visit_links') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        links.shop_id,
        links.date,
        links.transaction_id,
        links.timestamp_utc,
        links.visit_id,
        {{ surviving_customer_id('links.customer_id', 'links.shop_id') }} as customer_id,
        links.person_key,
        links.role,
        links.pos_customer_id,
        links.link_confidence,
        links.visit_id is not null                          as is_linked,
        links.reason
    from links

)

select * from final
