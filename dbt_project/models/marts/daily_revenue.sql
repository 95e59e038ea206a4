-- Shop x day totals. A shop-day with no transactions has no row.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    any_value(month)                      as month,
    count(*)                              as transactions,
    sum(number_of_cans)::bigint           as cans,
    sum(amount)::decimal(18, 2)           as revenue,
    sum(paid_amount)::decimal(18, 2)      as paid_revenue,
    sum(unpaid_amount)::decimal(18, 2)    as unpaid_revenue,
    count(distinct customer_id)           as customers,
    count(*) filter (where is_walk_in)    as walk_in_transactions
from {{ ref('transactions') }}
where {{ partition_filter('day') }}
group by shop_id, date
