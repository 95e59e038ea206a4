{#-
    The lake table `source('lake', table_name)`, or an empty relation with the source's documented
    columns (name + data_type in _sources.yml) while the dataset has no Parquet file yet: DuckDB's
    read_parquet fails on a glob that matches nothing, and a quarantine with no rejects may never
    have been written.
-#}
{% macro lake_source(table_name) %}
    {%- set relation = source('lake', table_name) -%}
    {%- if not execute -%}
        {{- return(relation) -}}
    {%- endif -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.lake.' ~ table_name] -%}
    {%- set meta = node.config.meta if node.config.meta else node.meta -%}
    {%- set files = run_query("select count(*) from glob('" ~ meta['lake_glob'] ~ "')").columns[0].values()[0] -%}
    {%- if files > 0 -%}
        {{- return(relation) -}}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- do columns.append('null::' ~ column.data_type ~ ' as ' ~ column.name) -%}
    {%- endfor -%}
    {{- return('(select ' ~ (columns | join(', ')) ~ ' where false)') -}}
{% endmacro %}
