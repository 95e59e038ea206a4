-- Every face track's identity decision, one row per (shop, day, track). Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    track_id,
    camera,
    start_utc,
    end_utc,
    person_id,
    n_person_tracks,
    n_embeddings,
    decision,
    customer_id,
    person_key,
    role,
    best_match,
    best_distance,
    track_distance,
    second_match,
    second_distance,
    second_distance - best_distance   as distance_margin,
    known_match,
    known_distance,
    ambiguous,
    reused
from {{ ref('stg_recognition_results') }}
where {{ partition_filter('day') }}
