-- One row per (shop, merged customer id) with the id that finally survives it: chains (c <- b <- a)
-- are followed to their end. Every day's merges, whatever the run's scope: a merge decided today
-- renames the person on every earlier day too. An id merged twice keeps its earliest merge.
with recursive source as (

    select *
    from {{ lake_source('customer_merges') }}

),

merges as (

    select shop_id::varchar as shop_id, customer_id::varchar as customer_id,
           surviving_id::varchar as surviving_id, date::date as decided_on
    from source
    qualify row_number() over (partition by shop_id, customer_id order by date, surviving_id) = 1

),

chains (shop_id, customer_id, surviving_id, decided_on, hops) as (

    select shop_id, customer_id, surviving_id, decided_on, 1
    from merges
    union all
    select chains.shop_id, chains.customer_id, merges.surviving_id, chains.decided_on, chains.hops + 1
    from chains
    join merges
        on merges.shop_id = chains.shop_id
       and merges.customer_id = chains.surviving_id
    where chains.hops < 100

),

final as (

    select shop_id, customer_id, decided_on,
           arg_max(surviving_id, hops) as surviving_id
    from chains
    group by shop_id, customer_id, decided_on

)

select * from final
