"""The Dagster instance a workspace uses: a persistent DAGSTER_HOME with a dagster.yaml."""

from __future__ import annotations

import os

from dagster import DagsterInstance

from watershop_dagster.config import WatershopConfig

DAGSTER_YAML = """\
# Dagster instance for this Watershop workspace (written by `watershop`; edit freely).
# Default storage is SQLite inside this folder. For production Postgres storage see README.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 2     # a 2-core machine: more parallel runs only thrash
  pools:
    default_limit: 1           # the duckdb_build pool: DuckDB allows one writer
run_monitoring:                # the daemon fails runs whose worker died and frees slots of ended runs
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  free_slots_after_run_end_seconds: 30
"""


def ensure_dagster_home(config: WatershopConfig) -> str:
    """Create DAGSTER_HOME (with dagster.yaml if absent) and point this process at it."""
    home = config.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)


def workspace_instance(config: WatershopConfig) -> DagsterInstance:
    ensure_dagster_home(config)
    return DagsterInstance.get()
