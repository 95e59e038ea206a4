-- Shop x month totals, re-aggregated from daily_revenue for the run's shop-month only.
{{ config(
    unique_key=['shop_id', 'month'],
    pre_hook="{{ delete_partition_scope('month', date_column='month') }}",
) }}

select
    shop_id,
    month,
    date_trunc('quarter', month)::date    as quarter,
    count(*)                              as days_with_sales,
    sum(transactions)::bigint             as transactions,
    sum(cans)::bigint                     as cans,
    sum(revenue)::decimal(18, 2)          as revenue,
    sum(paid_revenue)::decimal(18, 2)     as paid_revenue,
    sum(unpaid_revenue)::decimal(18, 2)   as unpaid_revenue,
    sum(walk_in_transactions)::bigint     as walk_in_transactions
from {{ ref('daily_revenue') }}
where {{ partition_filter('month') }}
group by shop_id, month
