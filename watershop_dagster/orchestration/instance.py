"""The Dagster instance a workspace uses: a persistent DAGSTER_HOME with a dagster.yaml.

The instance is built from the workspace's home folder explicitly; nothing sets $DAGSTER_HOME for
the process (`dagster dev` and the daemon get it on their command line, see README).
"""

from __future__ import annotations

from pathlib import Path

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


def ensure_dagster_home(config: WatershopConfig) -> Path:
    """Create the workspace's DAGSTER_HOME folder, with a dagster.yaml if it has none."""
    home = config.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DAGSTER_YAML)
    return home


def workspace_instance(config: WatershopConfig) -> DagsterInstance:
    """The persistent instance of the workspace's DAGSTER_HOME (SQLite by default, or what its
    dagster.yaml configures, e.g. Postgres)."""
    return DagsterInstance.from_config(str(ensure_dagster_home(config)))
