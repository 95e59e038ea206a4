"""The Dagster code location (workspace.yaml / `dagster dev` load `defs`): only assembles.

The workspace config comes from $WATERSHOP_CONFIG (default ./data_lake/watershop.yaml), read once
here at load (no config yet: empty definitions and a warning). The Celery jobs join only when $WATERSHOP_CELERY_BROKER is set; their module is
imported from nowhere else (workers rebuild the job through its own pointer).
"""

from watershop_dagster.orchestration.assemble import code_location_definitions
from watershop_dagster.orchestration.celery_jobs import with_celery_jobs

defs = with_celery_jobs(code_location_definitions())
