"""The dbt project that builds the DuckDB marts, and the vars it reads (no environment variables)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from dagster_dbt import DbtProject

from watershop_dagster.catalog import BEHAVIOUR_OUTPUTS
from watershop_dagster.config import WatershopConfig
from watershop_dagster.fixtures import REPO_ROOT
from watershop_dagster.lake import PART_FILE
from watershop_dagster.locks import manifest_lock

PACKAGED_DBT_PROJECT = Path(__file__).resolve().parent / "dbt_project"  # where the wheel ships it


def _project_dir() -> Path:
    """The project inside an installed wheel, else the checkout's top-level dbt_project/."""
    return PACKAGED_DBT_PROJECT if (PACKAGED_DBT_PROJECT / "dbt_project.yml").is_file() else REPO_ROOT / "dbt_project"


DBT_PROJECT_DIR = _project_dir()


def dbt_project() -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_vars(config: WatershopConfig, scope: dict[str, str] | None = None) -> dict[str, object]:
    """The --vars of a build: where the workspace's lake and build file are (the profile and the
    sources read them), the config values dbt tests check against, each shop's time zone (the zone
    marts turn UTC times into local ones) and the partition scope."""
    return {"watershop_lake_root": str(config.lake_root), "watershop_build_db": str(config.build_db),
            "watershop_workspace": str(config.workspace_dir),
            "max_visit_hours": config.thresholds.max_visit_hours,
            "shop_timezones": {shop.id: shop.timezone for shop in config.shops}, **(scope or {})}


#: dbt tag of the supermarket behaviour models and tests (models/*/zones, tests/zones)
ZONES_TAG = "zones"


def lake_has_behaviour_data(lake_root: Path) -> bool:
    """Whether any behaviour dataset (person tracks, zone visits, ...) has a partition file yet."""
    return any(next((Path(lake_root) / entry.name).rglob(PART_FILE), None) is not None
               for entry in BEHAVIOUR_OUTPUTS)


def zone_build_args(config: WatershopConfig, extra_args: list[str] | None = None) -> list[str]:
    """`extra_args`, excluding the zone models while the lake holds no behaviour data: a water shop's
    build stays as fast as before and its served file holds no empty zone marts."""
    args = list(extra_args or [])
    if lake_has_behaviour_data(config.lake_root):
        return args
    if "--exclude" in args:  # dbt keeps the last --exclude: widen the one given
        at = args.index("--exclude") + 1
        return [*args[:at], f"tag:{ZONES_TAG}", *args[at:]]
    return [*args, "--exclude", f"tag:{ZONES_TAG}"]


# The code location's manifest describes the project's graph, which no workspace path changes.
DEFINITIONS_VARS = {"watershop_lake_root": "/workspace-independent/lake", "watershop_build_db": ":memory:"}


def ensure_manifest(project: DbtProject) -> Path:
    """Parse the project when its manifest is missing, empty or older than any model, macro or config.

    Every process loading the definitions calls this, often several at once (a run beside the UI,
    parallel runs): the parse runs under a lock into a scratch folder and the manifest is swapped
    in atomically, so no process reads a half-written manifest and a parse killed half way leaves
    the old one (or none), never a truncated one that every later load would fail on."""
    manifest = Path(project.manifest_path)
    if _manifest_current(manifest, Path(project.project_dir)):
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with manifest_lock(manifest.parent):
        if not _manifest_current(manifest, Path(project.project_dir)):
            _parse_into(manifest, project)
    return manifest


def _manifest_current(manifest: Path, project_dir: Path) -> bool:
    sources = [p for p in project_dir.rglob("*")
               if p.suffix in {".sql", ".py", ".yml", ".yaml"} and "target" not in p.parts]
    newest = max((p.stat().st_mtime for p in sources), default=0.0)
    return manifest.is_file() and manifest.stat().st_size > 0 and manifest.stat().st_mtime >= newest


def _parse_into(manifest: Path, project: DbtProject) -> None:
    from dbt.cli.main import dbtRunner

    scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=manifest.parent))
    try:
        result = dbtRunner().invoke(
            ["parse", "--project-dir", str(project.project_dir), "--profiles-dir", str(project.profiles_dir), "--quiet",
             "--target-path", str(scratch), "--vars", json.dumps(DEFINITIONS_VARS)]
        )
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
        os.replace(scratch / "manifest.json", manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
