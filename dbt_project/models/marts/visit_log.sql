-- Every visit (all roles: customer, staff, vip, blocked), one row per (shop, day, visit), with the
-- POS sale(s) linked to it. Rebuilt one shop-day at a time. Customer marts downstream drop
-- role = 'staff' (is_customer) and count vip/blocked visitors as customers.
{{ config(
    unique_key=['shop_id', 'date'],
    pre_hook="{{ delete_partition_scope('day') }}",
) }}

with visits as (

    select *
    from {{ ref('stg_visits') }}
    where {{ partition_filter('day') }}

),

links as (

    select shop_id, date, transaction_id, visit_id
    from {{ ref('transaction_visit_links') }}
    where visit_id is not null
      and {{ partition_filter('day') }}

),

sales as (

    select shop_id, date, transaction_id, timestamp_local, amount
    from {{ ref('transactions') }}
    where {{ partition_filter('day') }}

),

-- A visit may pay for more than one bill: the first bill is shown, the amounts are summed.
-- A link to a bill missing from `transactions` (e.g. quarantined) still counts, with no amount.
linked as (

    select
        links.shop_id,
        links.date,
        links.visit_id,
        first(links.transaction_id order by sales.timestamp_local nulls last, links.transaction_id)
                                               as transaction_id,
        count(*)                               as transactions,
        sum(sales.amount)::decimal(18, 2)      as amount
    from links
    left join sales
        on sales.shop_id = links.shop_id
       and sales.date = links.date
       and sales.transaction_id = links.transaction_id
    group by links.shop_id, links.date, links.visit_id

)

select
    visits.visit_id,
    visits.shop_id,
    visits.date,
    visits.customer_id,
    visits.person_key,
    visits.role,
    visits.role <> 'staff'                      as is_customer,
    visits.entry_time,
    visits.exit_time,
    visits.entry_utc,
    visits.exit_utc,
    hour(visits.entry_time)::integer            as hour,
    visits.duration_s,
    visits.cameras,
    visits.n_tracks,
    visits.n_faces,
    visits.confidence,
    visits.ambiguous,
    linked.transaction_id,
    coalesce(linked.transactions, 0)::integer   as transactions,
    linked.amount
from visits
left join linked
    on linked.shop_id = visits.shop_id
   and linked.date = visits.date
   and linked.visit_id = visits.visit_id
