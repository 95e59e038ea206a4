-- One row per lake transaction row, typed, with calendar fields derived from local time.
-- The partition filter sits directly on the hive columns, so DuckDB prunes the glob to the
-- scoped shop-day's file instead of reading the whole history.
with source as (

    select *
    from {{ lake_source('transactions') }}
    where {{ partition_filter('day') }}

)

select
    shop_id::varchar                                  as shop_id,
    date::date                                        as date,
    transaction_id::varchar                           as transaction_id,
    timestamp_local::timestamp                        as timestamp_local,
    timestamp_utc::timestamptz                        as timestamp_utc,
    date_trunc('month', date::date)::date             as month,
    date_trunc('quarter', date::date)::date           as quarter,
    hour(timestamp_local)::integer                    as hour,
    customer_id::varchar                              as customer_id,
    payment_mode::varchar                             as payment_mode,
    can_size::varchar                                 as can_size,
    number_of_cans::integer                           as number_of_cans,
    round(amount, 2)::decimal(18, 2)                  as amount,
    payment_status::varchar                           as payment_status,
    source_file::varchar                              as source_file,
    source_line::integer                              as source_line
from source
