{#-
    The body of the customer-visit totals marts, one per grain:

        grain 'day'     -> daily_visits      (date,    its month, ... visits_with_purchase, unidentified_visits)
        grain 'month'   -> monthly_visits    (month,   its quarter, ... days_with_visits)
        grain 'quarter' -> quarterly_visits  (quarter, ... days_with_visits)

    Staff are excluded (int_customer_visits). Distinct customers are not additive over days, so
    every grain recounts them from the visits: a customer is new in the period of their first
    visit ever at the shop, returning in later ones. The rows are those of onward_filter(grain):
    the run's period and the shop's later ones, which the model's delete_onward_scope pre-hook
    deletes first. Periods without customer visits have no row.
-#}
{% macro visit_totals(grain) %}
    {%- set grains = {
        'day':     {'period': 'date',    'parent': 'month'},
        'month':   {'period': 'month',   'parent': 'quarter'},
        'quarter': {'period': 'quarter', 'parent': none},
    } -%}
    {%- if grain not in grains -%}
        {{ exceptions.raise_compiler_error("visit_totals: unknown grain '" ~ grain ~ "'") }}
    {%- endif -%}
    {%- set period = grains[grain].period -%}
    {%- set parent = grains[grain].parent -%}

with visits as (

    select
        *,
        date_trunc('{{ grain }}', date)::date   as period
    from {{ ref('int_customer_visits') }}

),

scoped as (

    select *
    from visits
    where {{ onward_filter(grain, date_column='period') }}

),

final as (

    select
        shop_id,
        period                                                                as {{ period }},
        {%- if parent %}
        date_trunc('{{ parent }}', period)::date                              as {{ parent }},
        {%- endif %}
        count(*)                                                              as visits,
        count(distinct customer_id)                                           as unique_customers,
        count(distinct customer_id) filter (where first_date >= period)       as new_customers,
        count(distinct customer_id) filter (where first_date < period)        as returning_customers,
        {%- if grain == 'day' %}
        avg(duration_s)                                                       as avg_duration_s,
        count(*) filter (where transactions > 0)                              as visits_with_purchase,
        count(*) filter (where customer_id is null)                           as unidentified_visits
        {%- else %}
        count(distinct date)                                                  as days_with_visits,
        avg(duration_s)                                                       as avg_duration_s
        {%- endif %}
    from scoped
    group by shop_id, period

)

select * from final
{%- endmacro %}
