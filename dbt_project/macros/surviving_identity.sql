{#-
    A behaviour dataset's `identity` read through stg_customer_merges, as stg_visits reads its
    customer ids: a customer id merged into another appears as the id that survives it, so a person's
    tracks, zone visits, loitering and crossings join their store visit and their customer figures
    under one id (a run that records a merge rebuilds the marts from the merged id's first day).
    Known people (staff/..., vip/..., blocked/...) and anonymous tracks are never merged.
-#}
{% macro surviving_identity(identity='source.identity', shop_id='source.shop_id') %}
    coalesce(
        (
            select merges.surviving_id
            from {{ ref('stg_customer_merges') }} as merges
            where merges.shop_id = {{ shop_id }}::varchar
              and merges.customer_id = {{ identity }}::varchar
        ),
        {{ identity }}::varchar
    )
{% endmacro %}
