{#-
    The partitions a run is scoped to, from the dbt vars `shop_id`, `date` and `date_to` (strings,
    all optional; `date_to` defaults to `date`).

        dbt build --vars '{"shop_id": "shop1", "date": "2024-05-01"}'                         -> one shop-day
        dbt build --vars '{"shop_id": "shop1", "date": "2024-05-01", "date_to": "2024-05-31"}' -> a range of days
        dbt build                                                                             -> everything

    `shop_id` may also be left out (all shops of the days), or `date` (one shop, all days). A range
    is what a single-run backfill builds. The values are validated here because they are inlined
    into SQL.
-#}
{% macro partition_vars() %}
    {%- set shop_id = var('shop_id', none) -%}
    {%- set day = var('date', none) -%}
    {%- set day_to = var('date_to', none) -%}
    {%- set shop_id = none if shop_id is none or (shop_id | string | trim) == '' else (shop_id | string | trim) -%}
    {%- set day = none if day is none or (day | string | trim) == '' else (day | string | trim) -%}
    {%- set day_to = day if day_to is none or (day_to | string | trim) == '' else (day_to | string | trim) -%}
    {%- if shop_id is not none and not modules.re.fullmatch('[A-Za-z0-9_-]+', shop_id) -%}
        {{ exceptions.raise_compiler_error("var shop_id must match [A-Za-z0-9_-]+, got '" ~ shop_id ~ "'") }}
    {%- endif -%}
    {%- if day is not none and not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', day) -%}
        {{ exceptions.raise_compiler_error("var date must be YYYY-MM-DD, got '" ~ day ~ "'") }}
    {%- endif -%}
    {%- if day_to is not none and (day is none or not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', day_to)
                                   or day_to < day) -%}
        {{ exceptions.raise_compiler_error("var date_to must be YYYY-MM-DD, on or after var date, got '" ~ day_to ~ "'") }}
    {%- endif -%}
    {{ return({'shop_id': shop_id, 'date': day, 'date_to': day_to}) }}
{% endmacro %}


{#-
    SQL predicate selecting the rows of the current partition scope ('true' when unscoped).

    grain:
      'day'   -> shop_id and date .. date_to              (day-grained models; pushed into the lake's hive pruning)
      'month' -> shop_id and the months of date .. date_to (monthly models)
      'shop'  -> shop_id only                (customer-level models: a customer's totals span all days)
-#}
{% macro partition_filter(grain='day', shop_column='shop_id', date_column='date') %}
    {%- set scope = partition_vars() -%}
    {%- set predicates = [] -%}
    {%- if scope.shop_id is not none -%}
        {%- do predicates.append(shop_column ~ " = '" ~ scope.shop_id ~ "'") -%}
    {%- endif -%}
    {%- if scope.date is not none -%}
        {%- if grain == 'day' -%}
            {%- if scope.date_to == scope.date -%}
                {%- do predicates.append(date_column ~ " = date '" ~ scope.date ~ "'") -%}
            {%- else -%}
                {%- do predicates.append(
                    date_column ~ " between date '" ~ scope.date ~ "' and date '" ~ scope.date_to ~ "'") -%}
            {%- endif -%}
        {%- elif grain == 'month' -%}
            {%- do predicates.append(
                date_column ~ " >= date_trunc('month', date '" ~ scope.date ~ "')"
                ~ " and " ~ date_column ~ " < date_trunc('month', date '" ~ scope.date_to ~ "') + interval 1 month"
            ) -%}
        {%- elif grain != 'shop' -%}
            {{ exceptions.raise_compiler_error("partition_filter: unknown grain '" ~ grain ~ "'") }}
        {%- endif -%}
    {%- endif -%}
    {{- return('(' ~ (predicates | join(' and ')) ~ ')' if predicates else 'true') -}}
{% endmacro %}


{#-
    Pre-hook for incremental marts: delete the whole partition scope before delete+insert runs.

    delete+insert alone only deletes keys present in the new batch, so a shop-day whose lake file
    became empty would keep its old rows; deleting the scope first makes every rebuild exact and
    idempotent. Runs inside the model's transaction, so readers never see the gap.
    Refuses --full-refresh together with partition vars, which would truncate the table to one partition.
-#}
{% macro delete_partition_scope(grain='day', shop_column='shop_id', date_column='date') %}
    {{- delete_scoped_rows(partition_filter(grain, shop_column, date_column)) -}}
{% endmacro %}


{#- The pre-hooks' shared body: refuse a scoped --full-refresh, delete `predicate`'s rows when incremental. -#}
{% macro delete_scoped_rows(predicate) %}
    {%- set scope = partition_vars() -%}
    {%- if execute and should_full_refresh() and (scope.shop_id is not none or scope.date is not none) -%}
        {#- A full refresh replaces the whole table: from one partition's rows it would drop the rest. -#}
        {{ exceptions.raise_compiler_error(
            "--full-refresh rebuilds whole tables; run it without the shop_id/date vars (" ~ this ~ ")") }}
    {%- endif -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ predicate }}
    {%- endif -%}
{% endmacro %}
