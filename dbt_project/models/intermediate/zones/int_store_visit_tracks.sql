-- Person tracks of the run's scope, each with the store visit it belongs to (macros/store_visit_id.sql):
-- tracks of one identity on one day across cameras are one visit, an anonymous track is its own.
{{ config(materialized='ephemeral') }}

with tracks as (

    select *
    from {{ ref('stg_person_tracks') }}
    where {{ partition_filter('day') }}

),

final as (

    select
        *,
        {{ store_visit_id() }}      as store_visit_id,
        role <> 'staff'             as is_customer
    from tracks

)

select * from final
