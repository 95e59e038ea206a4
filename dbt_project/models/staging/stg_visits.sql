-- One row per visit of the run's scope, typed. Local times are renamed entry_time / exit_time,
-- a missing role counts as 'customer', a missing duration is taken from the UTC times. A visit id
-- listed twice in one shop-day file keeps its longest row.
-- Customer ids are read through stg_customer_merges (macros/surviving_customer_id.sql): a merged id
-- appears as the id it merged into.
with source as (

    select *
    from {{ lake_source('visits') }}
    where {{ partition_filter('day') }}

),

select
    source.shop_id::varchar                                             as shop_id,
    date::date                                                          as date,
    visit_id::varchar                                                   as visit_id,
    {{ surviving_customer_id('source.customer_id') }}                   as customer_id,
    person_key::varchar                                                 as person_key,
    coalesce(role::varchar, 'customer')                                 as role,
    entry_local::timestamp                                              as entry_time,
    exit_local::timestamp                                               as exit_time,
    entry_utc::timestamptz                                              as entry_utc,
    exit_utc::timestamptz                                               as exit_utc,
    coalesce(duration_s::double, epoch(exit_utc::timestamptz) - epoch(entry_utc::timestamptz))
                                                                        as duration_s,
    cameras::varchar                                                    as cameras,
    n_tracks::integer                                                   as n_tracks,
    n_faces::integer                                                    as n_faces,
    confidence::double                                                  as confidence,
    ambiguous::boolean                                                  as ambiguous
from source
qualify row_number() over (
    partition by source.shop_id, date, visit_id
    order by exit_local desc nulls last, entry_local nulls last, source.customer_id nulls last
) = 1
