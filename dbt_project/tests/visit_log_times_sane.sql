-- Every visit of the run's scope has its times, ends at or after it starts and lasts between 0
-- and `max_visit_hours` hours (the config's thresholds.max_visit_hours, passed as a dbt var by the
-- pipeline; the identity pipeline cuts longer stays into pieces), by duration_s and by its UTC
-- times. Order and span are checked in UTC: naive local times can step back an hour when daylight
-- saving time ends. Returns the bad visits.
{{ config(meta={'dagster': {'ref': {'name': 'visit_log'}}}) }}  -- dagster-dbt: an asset check on visit_log
{%- set max_hours = var('max_visit_hours') | float -%}
{%- if max_hours <= 0 -%}
    {{ exceptions.raise_compiler_error("var max_visit_hours must be > 0") }}
{%- endif %}

select shop_id, date, visit_id, entry_time, exit_time, duration_s
from {{ ref('visit_log') }}
where {{ partition_filter('day') }}
  and (
        entry_time is null
     or exit_time is null
     or entry_utc is null
     or exit_utc is null
     or exit_utc < entry_utc
     or duration_s is null
     or duration_s < 0
     or duration_s > {{ max_hours }} * 3600
     or epoch(exit_utc) - epoch(entry_utc) > {{ max_hours }} * 3600
  )
