"""The dbt project that builds the DuckDB marts, and the environment it reads."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtProject

from watershop_dagster.config import WatershopConfig
from watershop_dagster.fixtures import REPO_ROOT

PACKAGED_DBT_PROJECT = Path(__file__).resolve().parent / "dbt_project"  # where the wheel ships it


def _project_dir() -> Path:
    """The project inside an installed wheel, else the checkout's top-level dbt_project/."""
    return PACKAGED_DBT_PROJECT if (PACKAGED_DBT_PROJECT / "dbt_project.yml").is_file() else REPO_ROOT / "dbt_project"


DBT_PROJECT_DIR = _project_dir()


def dbt_project() -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_env(config: WatershopConfig) -> dict[str, str]:
    """Variables the dbt profile and sources read: where the lake and the build file are."""
    return {"WATERSHOP_LAKE_ROOT": str(config.lake_root), "WATERSHOP_BUILD_DB": str(config.build_db)}


def dbt_vars(config: WatershopConfig, scope: dict[str, str]) -> dict[str, object]:
    """The --vars of a build: the partition scope plus the config values dbt tests check against."""
    return {**scope, "max_visit_hours": config.thresholds.max_visit_hours}


_ENVIRONMENT_LOCK = threading.RLock()


@contextmanager
def dbt_environment(config: WatershopConfig) -> Iterator[dict[str, str]]:
    """`dbt_env(config)` in the environment only while dbt starts or runs, then the previous values back.

    dbt reads these paths with env_var() from its own process environment, and neither an in-process
    dbtRunner nor dagster-dbt 0.29's DbtCliResource.cli (which copies os.environ into the dbt
    subprocess) takes an env argument. Scoping the change keeps one workspace's paths from leaking
    into the next call in the same process (the last config loaded no longer wins)."""
    env = dbt_env(config)
    with _ENVIRONMENT_LOCK:
        previous = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def ensure_manifest(project: DbtProject) -> Path:
    """Parse the project when its manifest is missing or older than any model, macro or config."""
    manifest = project.manifest_path
    sources = [p for p in Path(project.project_dir).rglob("*") if p.suffix in {".sql", ".yml", ".yaml"} and "target" not in p.parts]
    newest = max((p.stat().st_mtime for p in sources), default=0.0)
    if not manifest.exists() or manifest.stat().st_mtime < newest:
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke(
            ["parse", "--project-dir", str(project.project_dir), "--profiles-dir", str(project.profiles_dir), "--quiet"]
        )
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
    return manifest
