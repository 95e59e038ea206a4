-- Per shop and zone, how the zone's customer dwell goes with the sales of its categories, over every
-- zone-hour (grain 'hour') and zone-day (grain 'day') of fct_zone_hour: Pearson r of total dwell vs
-- sales, its 95 % confidence interval by Fisher's z (tanh(atanh(r) +- 1.96 / sqrt(n - 3))), and the
-- least-squares slope (sales per extra minute of dwell). Only hours with visitors or sales are
-- observations (fct_zone_hour has no row for an hour with neither). A row whose figures cannot be
-- computed says why (status, reason). Spans every day, so a run recomputes its shop.
{{ config(
    unique_key=['shop_id', 'zone', 'grain'],
    pre_hook="{{ delete_partition_scope('shop') }}",
) }}

{%- set fisher_z_975 = 1.959963984540054 %}
{%- set min_n_for_interval = 4 %}

with zone_hours as (

    select *
    from {{ ref('fct_zone_hour') }}
    where {{ partition_filter('shop') }}

),

zone_visits as (

    select *
    from {{ ref('zone_visits') }}
    where is_customer
      and {{ partition_filter('shop') }}

),

receipt_lines as (

    select *
    from {{ ref('receipt_lines') }}
    where zone is not null
      and {{ partition_filter('shop') }}

),

zone_categories as (

    select shop_id, zone, any_value(category) as category
    from zone_visits
    group by shop_id, zone

),

sold_categories as (

    select shop_id, zone, string_agg(distinct category, ',' order by category) as sold_categories
    from receipt_lines
    group by shop_id, zone

),

zone_days as (

    select
        shop_id,
        date,
        zone,
        sum(total_dwell_s)                          as total_dwell_s,
        sum(sales)                                  as sales
    from zone_hours
    group by shop_id, date, zone

),

observations as (

    select shop_id, zone, 'hour' as grain, date, total_dwell_s, sales::double as sales from zone_hours
    union all
    select shop_id, zone, 'day' as grain, date, total_dwell_s, sales::double as sales from zone_days

),

fits as (

    select
        shop_id,
        zone,
        grain,
        min(date)                                   as first_date,
        max(date)                                   as last_date,
        count(*)                                    as n,
        avg(total_dwell_s)                          as mean_total_dwell_s,
        avg(sales)                                  as mean_sales,
        coalesce(var_samp(total_dwell_s), 0)        as dwell_variance,
        coalesce(var_samp(sales), 0)                as sales_variance,
        corr(total_dwell_s, sales)                  as r,
        regr_slope(sales, total_dwell_s / 60)       as slope
    from observations
    group by shop_id, zone, grain

),

judged as (

    select
        *,
        case
            when n < 2 then 'too_few_observations'
            when dwell_variance = 0 or sales_variance = 0 then 'no_variation'
            when n < {{ min_n_for_interval }} then 'no_interval'
            when abs(r) >= 1 then 'perfect_correlation'
            else 'ok'
        end                                         as status
    from fits

),

final as (

    select
        judged.shop_id,
        judged.zone,
        judged.grain,
        zone_categories.category,
        sold_categories.sold_categories,
        judged.first_date,
        judged.last_date,
        judged.n,
        judged.mean_total_dwell_s,
        judged.mean_sales,
        case when judged.status in ('ok', 'no_interval', 'perfect_correlation') then judged.r end
                                                    as correlation,
        case
            when judged.status = 'ok'
                then tanh(atanh(judged.r) - {{ fisher_z_975 }} / sqrt(judged.n - 3))
            when judged.status = 'perfect_correlation' then judged.r
        end                                         as ci_low,
        case
            when judged.status = 'ok'
                then tanh(atanh(judged.r) + {{ fisher_z_975 }} / sqrt(judged.n - 3))
            when judged.status = 'perfect_correlation' then judged.r
        end                                         as ci_high,
        case when judged.dwell_variance > 0 then judged.slope end
                                                    as slope_sales_per_dwell_minute,
        judged.status,
        case judged.status
            when 'too_few_observations' then 'n = ' || judged.n || ': a correlation needs at least 2 observations'
            when 'no_variation' then
                case when judged.dwell_variance = 0 then 'dwell is the same in every observation'
                     else 'sales are the same in every observation' end
            when 'no_interval' then
                'n = ' || judged.n || ': the Fisher z interval needs at least {{ min_n_for_interval }} observations'
            when 'perfect_correlation' then '|r| = 1: the interval is the point itself'
        end                                         as reason
    from judged
    left join zone_categories
        on  zone_categories.shop_id = judged.shop_id
        and zone_categories.zone = judged.zone
    left join sold_categories
        on  sold_categories.shop_id = judged.shop_id
        and sold_categories.zone = judged.zone

)

select * from final
