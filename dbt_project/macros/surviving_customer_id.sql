{#-
    A customer id read through stg_customer_merges: an id merged into another appears as the id that
    survives it (chains followed to their end), any other value as it is. Every model that reads a
    customer id from the lake uses it (visits, recognition results, transaction links, and the
    behaviour datasets' `identity`), so a person renamed by a later merge is one person in every mart;
    a run that records a merge rebuilds the marts from the merged id's first day. Known people
    (staff/..., vip/..., blocked/...) and nulls are never merged, so they pass through.
-#}
{% macro surviving_customer_id(customer_id, shop_id='source.shop_id') %}
    coalesce(
        (
            select merges.surviving_id
            from {{ ref('stg_customer_merges') }} as merges
            where merges.shop_id = {{ shop_id }}::varchar
              and merges.customer_id = {{ customer_id }}::varchar
        ),
        {{ customer_id }}::varchar
    )
{% endmacro %}
