-- Shop x month customer-visit totals (staff excluded), recounted from the visits (distinct
-- customers are not additive over days); a customer is new in the month of their first visit ever
-- at the shop. A run rewrites its shop's month and every later month of that shop.
-- The SQL is shared with daily/quarterly_visits: macros/visit_totals.sql.
{{ config(
    unique_key=['shop_id', 'month'],
    pre_hook="{{ delete_onward_scope('month', date_column='month') }}",
) }}

{{ visit_totals('month') }}
