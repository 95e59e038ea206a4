-- One row per (shop, merged customer id), typed, with the id that finally survives it: chains
-- (c <- b <- a) are followed to their end. Every day's merges, whatever the run's scope: a merge
-- decided today renames the person on every earlier day too. An id merged twice keeps its earliest
-- merge.
with recursive source as (

    select *
    from {{ lake_source('customer_merges') }}

),

merges as (

    select
        shop_id::varchar                    as shop_id,
        customer_id::varchar                as customer_id,
        surviving_id::varchar               as merged_into,
        date::date                          as decided_on,
        first_seen::date                    as first_seen,
        linkage::double                     as linkage,
        runner_up::double                   as runner_up,
        n_exemplars::integer                as n_exemplars,
        n_exemplars_surviving::integer      as n_exemplars_surviving
    from source
    qualify row_number() over (partition by shop_id, customer_id order by date, surviving_id) = 1

),

chains (shop_id, customer_id, surviving_id, hops) as (

    select shop_id, customer_id, merged_into, 1
    from merges
    union all
    select chains.shop_id, chains.customer_id, merges.merged_into, chains.hops + 1
    from chains
    join merges
        on merges.shop_id = chains.shop_id
       and merges.customer_id = chains.surviving_id
    where chains.hops < 100

),

survivors as (

    select shop_id, customer_id, arg_max(surviving_id, hops) as surviving_id
    from chains
    group by shop_id, customer_id

),

final as (

    select
        merges.shop_id,
        merges.customer_id,
        survivors.surviving_id,
        merges.merged_into,
        merges.decided_on,
        merges.first_seen,
        merges.linkage,
        merges.runner_up,
        merges.n_exemplars,
        merges.n_exemplars_surviving
    from merges
    join survivors
        on survivors.shop_id = merges.shop_id
       and survivors.customer_id = merges.customer_id

)

select * from final
