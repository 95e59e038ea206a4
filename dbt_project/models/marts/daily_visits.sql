-- Shop x day customer-visit totals (staff excluded; vip/blocked count as customers). A customer
-- is new on the day of their first visit ever at the shop, returning on later days, so a run
-- rewrites its shop-day and that shop's later days (onward_filter). Days without customer visits
-- have no row. The SQL is shared with monthly/quarterly_visits: macros/visit_totals.sql.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_onward_scope('day') }}",
) }}

{{ visit_totals('day') }}
