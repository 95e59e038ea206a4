-- Per shop and hour of day (shop-local): average customer visits per day over a trailing window,
-- peak/idle flags and a suggested staffing level. Recomputed per shop from visit_log.
--
-- Window: the `peak_window_days` (default 28) days ending on the shop's latest day with customer
-- visits (not on the run's date, so a backfill of an old day does not rewind it). Averages divide
-- by the days of the window that had customer visits (days_observed): closed days and days
-- without footage do not dilute them. A visit counts in the hour it started.
--
-- Rows: every hour of the shop's observed opening span plus any other hour with visits. The span
-- runs from the median hour of the day's first customer entry (lower median) to the median hour
-- of the day's last customer exit (upper median) over the window's days: robust to an odd early
-- or late day, and with an even number of days it takes the wider of the two middle spans.
--
--   is_peak: avg_visits_per_day is in the shop's top quartile of hours
--            (>= the 75th percentile, linear interpolation) and above the idle threshold.
--   is_idle: inside the opening span with avg_visits_per_day <= `idle_visits_per_day`
--            (default 0.25, i.e. at most one visit in that hour every four days).
--   suggested_staff = max(1, ceil(avg_visits_per_day * avg_duration_s / 3600 / utilisation)):
--            Little's law, visits per hour x hours per visit = customers in the shop on average,
--            divided by the target staff utilisation `staff_target_utilisation` (default 0.8).
--            avg_duration_s is that hour's own mean visit duration.
{%- set window_days = var('peak_window_days', 28) | int -%}
{%- set idle_max = var('idle_visits_per_day', 0.25) | float -%}
{%- set utilisation = var('staff_target_utilisation', 0.8) | float -%}
{%- if window_days < 1 -%}
    {{ exceptions.raise_compiler_error("var peak_window_days must be a positive integer") }}
{%- endif -%}
{%- if utilisation <= 0 or utilisation > 1 -%}
    {{ exceptions.raise_compiler_error("var staff_target_utilisation must be in (0, 1]") }}
{%- endif -%}
{%- if idle_max < 0 -%}
    {{ exceptions.raise_compiler_error("var idle_visits_per_day must be >= 0") }}
{%- endif %}
{{ config(
    unique_key=['shop_id', 'hour'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

with visits as (

    select shop_id, date, hour, entry_time, exit_time, duration_s
    from {{ ref('visit_log') }}
    where is_customer
      and {{ partition_filter('shop') }}

),

windows as (

    select
        shop_id,
        (max(date) - interval {{ window_days - 1 }} day)::date   as window_start,
        max(date)                                                 as window_end
    from visits
    group by shop_id

),

in_window as (

    select visits.*
    from visits
    join windows
        on windows.shop_id = visits.shop_id
       and visits.date >= windows.window_start

),

days as (

    select
        shop_id,
        date,
        hour(min(entry_time))   as open_hour,
        hour(max(exit_time))    as close_hour
    from in_window
    group by shop_id, date

),

shops as (

    select
        shop_id,
        count(*)                                as days_observed,
        quantile_disc(open_hour, 0.5)           as open_hour,
        -quantile_disc(-close_hour, 0.5)        as close_hour   -- upper median
    from days
    group by shop_id

),

by_hour as (

    select shop_id, hour, count(*) as visits, avg(duration_s) as avg_duration_s
    from in_window
    group by shop_id, hour

),

hours as (

    select shops.shop_id, span.hour::integer as hour
    from shops
    cross join range(0, 24) as span(hour)
    where span.hour between shops.open_hour and shops.close_hour

    union

    select shop_id, hour
    from by_hour

),

stats as (

    select
        hours.shop_id,
        hours.hour,
        windows.window_start,
        windows.window_end,
        shops.days_observed,
        coalesce(by_hour.visits, 0)                                    as visits,
        coalesce(by_hour.visits, 0) / shops.days_observed              as avg_visits_per_day,
        by_hour.avg_duration_s,
        hours.hour between shops.open_hour and shops.close_hour        as in_opening_hours
    from hours
    join shops on shops.shop_id = hours.shop_id
    join windows on windows.shop_id = hours.shop_id
    left join by_hour
        on by_hour.shop_id = hours.shop_id
       and by_hour.hour = hours.hour

),

ranked as (

    select
        *,
        quantile_cont(avg_visits_per_day, 0.75) over (partition by shop_id)   as peak_threshold
    from stats

)

select
    shop_id,
    hour,
    avg_visits_per_day,
    avg_visits_per_day >= peak_threshold and avg_visits_per_day > {{ idle_max }}   as is_peak,
    in_opening_hours and avg_visits_per_day <= {{ idle_max }}                      as is_idle,
    greatest(1, ceil(round(
        avg_visits_per_day * coalesce(avg_duration_s, 0) / 3600 / {{ utilisation }}, 6
    )))::integer                                                                   as suggested_staff,
    in_opening_hours,
    visits,
    avg_duration_s,
    days_observed,
    window_start,
    window_end
from ranked
