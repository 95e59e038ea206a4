-- One row per face track of the run's scope with its identity decision, typed.
-- Customer ids are read through stg_customer_merges (macros/surviving_customer_id.sql): a merged id
-- appears as the id it merged into.
with source as (

    select *
    from {{ lake_source('recognition_results') }}
    where {{ partition_filter('day') }}

),

select
    source.shop_id::varchar    as shop_id,
    date::date                 as date,
    track_id::varchar          as track_id,
    camera::varchar            as camera,
    start_utc::timestamptz     as start_utc,
    end_utc::timestamptz       as end_utc,
    n_embeddings::integer      as n_embeddings,
    person_id::varchar         as person_id,
    n_person_tracks::integer   as n_person_tracks,
    best_match::varchar        as best_match,
    best_distance::double      as best_distance,
    track_distance::double     as track_distance,
    second_match::varchar      as second_match,
    second_distance::double    as second_distance,
    known_match::varchar       as known_match,
    known_distance::double     as known_distance,
    decision::varchar          as decision,
    ambiguous::boolean         as ambiguous,
    reused::boolean            as reused,
    {{ surviving_customer_id('source.customer_id') }} as customer_id,
    person_key::varchar        as person_key,
    role::varchar              as role
from source
qualify row_number() over (partition by source.shop_id, date, track_id order by camera, start_utc) = 1
