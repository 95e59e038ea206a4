-- Customer visits (staff excluded) with no POS sale linked to them: possible unpaid visits, or
-- visitors who only asked / walked past. Rebuilt one shop-day at a time.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

select
    shop_id,
    date,
    visit_id,
    customer_id,
    person_key,
    role,
    entry_time,
    exit_time,
    duration_s,
    cameras,
    confidence
from {{ ref('visit_log') }}
where is_customer
  and transactions = 0
  and {{ partition_filter('day') }}
