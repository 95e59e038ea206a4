-- The versioned category -> zone table of the run's shop (every shop when unscoped). An open
-- start (no valid_from) is 1900-01-01; valid_to is exclusive and null while the placement holds.
with source as (

    select *
    from {{ lake_source('category_zones') }}
    where {{ partition_filter('shop') }}

),

final as (

    select
        shop_id::varchar                                    as shop_id,
        category::varchar                                   as category,
        zone::varchar                                       as zone,
        coalesce(valid_from::date, date '1900-01-01')       as valid_from,
        valid_to::date                                      as valid_to
    from source

)

select * from final
