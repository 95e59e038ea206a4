-- Shop x day x rejection reason.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    reason,
    count(*)                      as rejected_rows,
    count(distinct source_file)   as source_files
from {{ ref('stg_transactions_quarantine') }}
where {{ partition_filter('day') }}
group by shop_id, date, reason
