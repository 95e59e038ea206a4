-- Shop x quarter customer-visit totals (staff excluded), recounted from the visits (distinct
-- customers are not additive over days); a customer is new in the quarter of their first visit
-- ever at the shop. A run rewrites its shop's quarter and every later quarter of that shop.
-- The SQL is shared with daily/monthly_visits: macros/visit_totals.sql.
{{ config(
    unique_key=['shop_id', 'quarter'],
    pre_hook="{{ delete_onward_scope('quarter', date_column='quarter') }}",
) }}

{{ visit_totals('quarter') }}
