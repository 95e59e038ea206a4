{#-
    The role of a behaviour dataset's `identity`: known people are written as their person_key
    (role/name: staff/..., vip/..., blocked/...), registry customers as their customer id, and an
    anonymous track has none (a customer nobody recognised). The same roles as visit_log: customer
    figures drop 'staff'.
-#}
{% macro identity_role(identity) %}
    case
        when {{ identity }} like 'staff/%' then 'staff'
        when {{ identity }} like 'vip/%' then 'vip'
        when {{ identity }} like 'blocked/%' then 'blocked'
        else 'customer'
    end
{% endmacro %}
