-- Watershop: example queries over the served marts (warehouse/marts.duckdb, opened read-only).
--
-- Each query starts with a header:
--   -- name: <identifier>
--   -- question: <the question it answers>
--   -- marts: <the marts it reads>
-- and ends with a semicolon. "Recent" windows are anchored on the latest day in the marts, so every
-- query returns rows on any workspace without editing; in a BI tool, replace the anchor with the
-- tool's date filter (e.g. Grafana's $__timeFilter(date), Metabase's {{date}} variable).
-- Queries whose marts include visit marts (visit_log, daily_visits, ...) need the footage pipeline;
-- the others run on a POS-only workspace.


-- name: daily_overview
-- question: Per shop and day over the last 30 days: how many visits, unique, new and returning customers, and how much was sold (paid and unpaid)?
-- marts: daily_visits, daily_revenue
with anchor as (select max(date) as last_day from daily_revenue)
select
    coalesce(v.shop_id, r.shop_id)          as shop_id,
    coalesce(v.date, r.date)                as date,
    coalesce(v.visits, 0)                   as visits,
    coalesce(v.unique_customers, 0)         as unique_customers,
    coalesce(v.new_customers, 0)            as new_customers,
    coalesce(v.returning_customers, 0)      as returning_customers,
    round(v.avg_duration_s / 60, 1)         as avg_visit_minutes,
    coalesce(r.transactions, 0)             as transactions,
    coalesce(r.revenue, 0)                  as revenue,
    coalesce(r.paid_revenue, 0)             as paid_revenue,
    coalesce(r.unpaid_revenue, 0)           as unpaid_revenue
from daily_visits v
full outer join daily_revenue r using (shop_id, date)
where coalesce(v.date, r.date) > (select last_day from anchor) - 30
order by shop_id, date;


-- name: revenue_by_day
-- question: How much did each shop sell per day (paid, unpaid, cans, walk-ins) over the last 30 days?
-- marts: daily_revenue
select shop_id, date, transactions, cans, revenue, paid_revenue, unpaid_revenue, customers, walk_in_transactions
from daily_revenue
where date > (select max(date) from daily_revenue) - 30
order by shop_id, date;


-- name: monthly_overview
-- question: Per shop and month: visits, unique/new/returning customers, and revenue.
-- marts: monthly_visits, monthly_revenue
select
    coalesce(v.shop_id, r.shop_id)     as shop_id,
    coalesce(v.month, r.month)         as month,
    v.visits, v.unique_customers, v.new_customers, v.returning_customers,
    r.days_with_sales, r.transactions, r.cans, r.revenue, r.unpaid_revenue
from monthly_visits v
full outer join monthly_revenue r using (shop_id, month)
order by shop_id, month;


-- name: quarterly_visits
-- question: How does customer traffic compare quarter by quarter?
-- marts: quarterly_visits
select shop_id, quarter, visits, unique_customers, new_customers, returning_customers,
       round(100.0 * returning_customers / nullif(unique_customers, 0), 1) as returning_pct
from quarterly_visits
order by shop_id, quarter;


-- name: peak_and_idle_hours
-- question: Which hours are busiest or idle, and how many staff should be on the counter each hour?
-- marts: peak_hours
select shop_id, hour, round(avg_visits_per_day, 2) as avg_visits_per_day, is_peak, is_idle, suggested_staff
from peak_hours
order by shop_id, hour;


-- name: hourly_traffic_recent
-- question: How many visits per hour of the day over the last 7 days?
-- marts: traffic_per_hour
select shop_id, hour, sum(visits) as visits, round(sum(visits) / count(distinct date), 2) as visits_per_day
from traffic_per_hour
where date > (select max(date) from traffic_per_hour) - 7
group by shop_id, hour
order by shop_id, hour;


-- name: opening_and_closing_times
-- question: When did the first customer arrive and the last one leave each day (detected opening and closing)?
-- marts: first_last_customer
select shop_id, date,
       strftime(first_entry, '%H:%M') as first_in, first_customer_id,
       strftime(last_exit, '%H:%M')   as last_out, last_customer_id
from first_last_customer
where date > (select max(date) from first_last_customer) - 30
order by shop_id, date;


-- name: top_customers_by_visits
-- question: Who are the 20 most frequent customers of each shop?
-- marts: customer_visit_counts, total_spent
select c.shop_id, c.customer_id, c.visits, c.first_visit, c.last_visit,
       round(c.avg_duration_s) as avg_visit_seconds,
       coalesce(s.amount, 0) as total_spent
from customer_visit_counts c
left join total_spent s using (shop_id, customer_id)
qualify row_number() over (partition by c.shop_id order by c.visits desc, c.customer_id) <= 20
order by c.shop_id, c.visits desc, c.customer_id;


-- name: top_spenders
-- question: Who are the 20 customers who spent the most at each shop, and how much do they still owe?
-- marts: total_spent
select shop_id, customer_id, transactions, cans, amount, paid_amount, unpaid_amount, first_purchase_at, last_purchase_at
from total_spent
qualify row_number() over (partition by shop_id order by amount desc, customer_id) <= 20
order by shop_id, amount desc, customer_id;


-- name: repeat_customer_share
-- question: What share of each shop's customers came back at least twice?
-- marts: unique_customers, repeat_visits
select u.shop_id,
       count(*)                                 as customers,
       count(r.customer_id)                     as repeat_customers,
       round(100.0 * count(r.customer_id) / count(*), 1) as repeat_pct,
       round(avg(u.days_visited), 2)            as avg_days_visited
from unique_customers u
left join repeat_visits r using (shop_id, customer_id)
group by u.shop_id
order by u.shop_id;


-- name: new_and_returning_recent
-- question: Who came in over the last 7 days, and was it their first time or were they returning?
-- marts: new_customers, returning_customers, unique_customers
with recent as (
    select shop_id, date, customer_id, 'new' as kind from new_customers
    union all
    select shop_id, date, customer_id, 'returning' from returning_customers
)
select r.shop_id, r.date, r.customer_id, r.kind, u.first_seen, u.visits as lifetime_visits
from recent r
join unique_customers u using (shop_id, customer_id)
where r.date > (select max(date) from new_customers) - 7
order by r.shop_id, r.date, r.kind, r.customer_id;


-- name: customer_history
-- question: One customer's visits and purchases, newest first (here the most frequent customer; replace the id).
-- marts: visit_log, customer_visit_counts
with who as (
    select shop_id, customer_id from customer_visit_counts order by visits desc, customer_id limit 1
)
select v.shop_id, v.customer_id, v.date, v.entry_time, v.exit_time, round(v.duration_s) as seconds,
       v.cameras, v.transaction_id, v.amount
from visit_log v
join who using (shop_id, customer_id)
order by v.entry_time desc;


-- name: payment_mode_mix
-- question: How do customers pay (Cash, UPI, Coin) over the last 30 days, and how much is unpaid per mode?
-- marts: payment_summary
select shop_id, payment_mode,
       sum(transactions) as transactions, sum(amount) as amount, sum(unpaid_amount) as unpaid_amount,
       round(100.0 * sum(amount) / sum(sum(amount)) over (partition by shop_id), 1) as share_of_revenue_pct
from payment_summary
where date > (select max(date) from payment_summary) - 30
group by shop_id, payment_mode
order by shop_id, amount desc;


-- name: cans_by_size_per_month
-- question: How many 10 L and 20 L cans does each shop sell per month?
-- marts: cans_per_day
select shop_id, date_trunc('month', date)::date as month, can_size,
       sum(cans) as cans, sum(transactions) as transactions, sum(amount) as amount
from cans_per_day
group by all
order by shop_id, month, can_size;


-- name: outstanding_unpaid
-- question: Who owes money, how much, and since when (walk-ins grouped together)?
-- marts: unpaid
select shop_id, coalesce(customer_id, '(walk-in)') as customer_id,
       count(*) as unpaid_transactions, sum(amount) as owed, min(timestamp_local) as oldest_unpaid
from unpaid
group by all
order by shop_id, owed desc;


-- name: repeat_defaulters
-- question: Which customers have two or more unpaid bills (the follow-up list)?
-- marts: repeat_defaulters
select shop_id, customer_id, unpaid_count, unpaid_cans, amount_owed, first_unpaid_at, last_unpaid_at
from repeat_defaulters
order by shop_id, amount_owed desc, customer_id;


-- name: visit_to_purchase_conversion
-- question: What share of visits ended in a purchase each day, and how many visitors left without paying?
-- marts: daily_visits, visits_without_payment
select d.shop_id, d.date, d.visits,
       count(w.visit_id) as visits_without_payment,
       round(100.0 * (d.visits - count(w.visit_id)) / nullif(d.visits, 0), 1) as conversion_pct
from daily_visits d
left join visits_without_payment w using (shop_id, date)
where d.date > (select max(date) from daily_visits) - 30
group by d.shop_id, d.date, d.visits
order by d.shop_id, d.date;


-- name: sales_matched_to_visits
-- question: How many sales could be matched to a camera visit, and how confident were the matches?
-- marts: transactions, transaction_visit_links
select t.shop_id, t.date,
       count(*) as transactions,
       count(l.visit_id) as linked_to_a_visit,
       round(100.0 * count(l.visit_id) / count(*), 1) as linked_pct,
       round(avg(l.link_confidence) filter (where l.visit_id is not null), 3) as avg_link_confidence
from transactions t
left join transaction_visit_links l using (shop_id, date, transaction_id)
group by t.shop_id, t.date
order by t.shop_id, t.date;


-- name: rejected_pos_rows
-- question: Which POS rows were rejected by validation, and why (data quality)?
-- marts: quarantine_summary
select shop_id, date, reason, rejected_rows, source_files
from quarantine_summary
order by shop_id, date desc, rejected_rows desc;
