{#-
    Fails with one row per key where `model` disagrees with a fresh aggregate of `from_model`,
    within the run's partition scope: a key present on one side only, or a measure that differs.

        from_model          the model (ref(...)) the expected numbers are recomputed from
        keys                grouping columns, shop column first, period column last; both models have them
        measures            {column of model: aggregate SQL over from_model}
        grain               partition_filter grain of both sides: 'day' or 'month'
        source_date_column  from_model's date column the partition filter applies to
                            (the period column of `model` is filtered on the model's side)
        source_where        SQL condition on from_model's rows, e.g. "is_customer"
        invariant           SQL condition every row of `model` (alias actual) must also satisfy
-#}
{% test reconcile(model, from_model, keys, measures, grain='day', source_date_column='date', source_where='true',
                  invariant='true') %}

with expected as (

    select
        {{ keys | join(', ') }},
        {%- for column, aggregate in measures.items() %}
        {{ aggregate }} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ from_model }}
    where ({{ source_where }})
      and {{ partition_filter(grain, date_column=source_date_column) }}
    group by {{ keys | join(', ') }}

),

actual as (

    select *
    from {{ model }}
    where {{ partition_filter(grain, date_column=keys[-1]) }}

),

final as (

    select
        {%- for key in keys %}
        coalesce(expected.{{ key }}, actual.{{ key }}) as {{ key }},
        {%- endfor %}
        {%- for column in measures %}
        expected.{{ column }} as expected_{{ column }},
        actual.{{ column }} as actual_{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from expected
    full outer join actual
        on {% for key in keys %}expected.{{ key }} = actual.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    where expected.{{ keys[0] }} is null
       or actual.{{ keys[0] }} is null
       {%- for column in measures %}
       or expected.{{ column }} is distinct from actual.{{ column }}
       {%- endfor %}
       or not ({{ invariant }})

)

select * from final
{% endtest %}
