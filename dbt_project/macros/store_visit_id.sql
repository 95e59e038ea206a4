{#-
    The store visit a person track belongs to, unique per shop-day: every track of one identity on
    one day is one store visit ('person:<identity>'), an anonymous track is its own
    ('track:<camera>/<track_id>').
-#}
{% macro store_visit_id(identity='identity', camera='camera', track_id='track_id') %}
    case
        when {{ identity }} is not null then 'person:' || {{ identity }}
        else 'track:' || {{ camera }} || '/' || {{ track_id }}
    end
{% endmacro %}
