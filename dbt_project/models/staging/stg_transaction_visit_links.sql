-- One row per (shop, day, bill) of the run's scope: the visit and registry customer it was linked
-- to, or why it stayed unlinked. A bill listed twice keeps its most confident link.
with source as (

    select *
    from {{ lake_source('transaction_visit_links') }}
    where {{ partition_filter('day') }}

)

select
    shop_id::varchar           as shop_id,
    date::date                 as date,
    transaction_id::varchar    as transaction_id,
    timestamp_utc::timestamptz as timestamp_utc,
    visit_id::varchar          as visit_id,
    customer_id::varchar       as customer_id,
    person_key::varchar        as person_key,
    role::varchar              as role,
    pos_customer_id::varchar   as pos_customer_id,
    link_confidence::double    as link_confidence,
    n_candidates::integer      as n_candidates,
    seen_gap_s::double         as seen_gap_s,
    reason::varchar            as reason
from source
qualify row_number() over (
    partition by shop_id, date, transaction_id
    order by (visit_id is null), link_confidence desc nulls last, visit_id
) = 1
