-- One row per POS row rejected by validation, scoped like stg_transactions.
with source as (

    select *
    from {{ lake_source('transactions_quarantine') }}
    where {{ partition_filter('day') }}

)

select
    shop_id::varchar       as shop_id,
    date::date             as date,
    source_file::varchar   as source_file,
    source_line::integer   as source_line,
    raw::varchar           as raw,
    reason::varchar        as reason
from source
