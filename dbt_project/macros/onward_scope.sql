{#-
    Scope of the marts whose rows depend on every earlier day of their shop: "new" vs "returning"
    customers. A customer is new on the day of their first visit ever at the shop, so rebuilding
    shop-day D can change the classification of D and of every later day of that shop, never of
    an earlier one. These marts therefore rewrite, for the run's shop, the run's day/month/quarter
    and everything after it. In daily operation D is the latest day, so this is one partition; a
    backfill of an old day recomputes that shop's tail, which stays exact.

        grain 'day'     -> shop_id and date    >= D
        grain 'month'   -> shop_id and date    >= first day of D's month
        grain 'quarter' -> shop_id and date    >= first day of D's quarter

    date_column may be a month/quarter column (its values are first days, so the same bound holds).
    Unscoped runs select everything ('true').
-#}
{% macro onward_filter(grain='day', shop_column='shop_id', date_column='date') %}
    {%- if grain not in ['day', 'month', 'quarter'] -%}
        {{ exceptions.raise_compiler_error("onward_filter: unknown grain '" ~ grain ~ "'") }}
    {%- endif -%}
    {%- set scope = partition_vars() -%}
    {%- set predicates = [] -%}
    {%- if scope.shop_id is not none -%}
        {%- do predicates.append(shop_column ~ " = '" ~ scope.shop_id ~ "'") -%}
    {%- endif -%}
    {%- if scope.date is not none -%}
        {%- do predicates.append(
            date_column ~ " >= date_trunc('" ~ grain ~ "', date '" ~ scope.date ~ "')::date") -%}
    {%- endif -%}
    {{- return('(' ~ (predicates | join(' and ')) ~ ')' if predicates else 'true') -}}
{% endmacro %}


{#- Pre-hook of the onward marts: like delete_partition_scope, over onward_filter's rows. -#}
{% macro delete_onward_scope(grain='day', shop_column='shop_id', date_column='date') %}
    {{- delete_scoped_rows(onward_filter(grain, shop_column, date_column)) -}}
{% endmacro %}
