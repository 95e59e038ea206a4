{#-
    `ts` (timestamptz, UTC) as the shop's local wall-clock time (naive timestamp). The behaviour
    datasets carry UTC times only; the time zone of each shop comes from the config through the dbt
    var `shop_timezones` ({shop_id: IANA zone}, watershop_dagster.dbt.dbt_vars). A shop missing
    from it is read in UTC. Values are inlined into SQL, so they are validated here.
-#}
{% macro shop_local(ts, shop_column='shop_id') %}
    {%- set zones = var('shop_timezones', {}) or {} -%}
    {%- for shop, zone in zones.items() -%}
        {%- if not modules.re.fullmatch('[A-Za-z0-9_-]+', shop | string)
               or not modules.re.fullmatch('[A-Za-z0-9_+/-]+', zone | string) -%}
            {{ exceptions.raise_compiler_error("var shop_timezones: bad entry '" ~ shop ~ "': '" ~ zone ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if zones -%}
        timezone(case {{ shop_column }}
            {%- for shop, zone in zones.items() %} when '{{ shop }}' then '{{ zone }}'{% endfor %}
            else 'UTC' end, {{ ts }})
    {%- else -%}
        timezone('UTC', {{ ts }})
    {%- endif -%}
{% endmacro %}
