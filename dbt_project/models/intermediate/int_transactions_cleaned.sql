-- Transactions ready for the marts: one row per (shop, day, bill) and payment split into
-- paid / unpaid amounts. If a bill appears twice in a shop-day file, the last line wins.
with deduplicated as (

    select *
    from {{ ref('stg_transactions') }}
    qualify row_number() over (
        partition by shop_id, date, transaction_id
        order by source_line desc nulls last, source_file desc
    ) = 1

)

select
    shop_id,
    date,
    transaction_id,
    timestamp_local,
    timestamp_utc,
    month,
    quarter,
    hour,
    customer_id,
    customer_id is null                                                  as is_walk_in,
    payment_mode,
    can_size,
    number_of_cans,
    amount,
    payment_status,
    payment_status = 'Paid'                                              as is_paid,
    case when payment_status = 'Paid' then amount else 0 end::decimal(18, 2)   as paid_amount,
    case when payment_status = 'Unpaid' then amount else 0 end::decimal(18, 2) as unpaid_amount,
    source_file,
    source_line
from deduplicated
