"""dbt builds in-process, with the project parsed once per workspace and process.

A dbt subprocess pays Python start-up, adapter loading and a full parse of the project on every
build: the run's scope travels in `--vars`, and dbt re-parses everything whenever the vars change.
Here the project is parsed once (with only the workspace's constant vars, so dbt's partial parsing
also survives across processes in the workspace's own target folder) and every build reuses that
manifest; the scope vars are only read when the models are compiled. The workspace's paths reach
dbt as vars too, so nothing is passed through the process environment.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from watershop_dagster.config import WatershopConfig
from watershop_dagster.dbt import DBT_PROJECT_DIR, dbt_vars, zone_build_args

PROJECT_SUFFIXES = {".sql", ".py", ".yml", ".yaml"}  # .py: the experiment marts are Python models
MAX_CACHED_MANIFESTS = 4  # a process rarely serves more workspaces than this (tests do)

RawEvent = dict[str, Any]  # one dbt event as dbt's JSON log would print it ({"info": ..., "data": ...})
# The events a build reports: one per finished node, what Dagster turns into outputs and check results.
# dbt fires ~20 events per node; turning each into a dict would cost more than running the node's SQL.
RESULT_EVENTS = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"})
# The levels of the lines a build prints and keeps in its log file (dbt's own loggers at level info).
SHOWN_LEVELS = frozenset({"info", "warn", "error"})
LOG_FILE = "dbt.log"
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024  # dbt's own default rotation: 10 MB, 5 old files
LOG_FILE_BACKUPS = 5
# The generic test that checks all of a model's not-null columns at once (macros/test_not_null_columns.sql).
NOT_NULL_TEST = "not_null_columns"


@dataclass(frozen=True)
class DbtBuildResult:
    success: bool
    events: list[RawEvent]  # the RESULT_EVENTS of the build's nodes
    failures: list[str]  # "<node>: <status> <message>" for every node that neither passed nor was skipped
    error: str | None = None
    # test unique_id -> what failed, where dbt's message only counts rows: "nulls in amount (3 rows)"
    failure_details: dict[str, str] = dataclasses.field(default_factory=dict)


def target_dir(config: WatershopConfig) -> Path:
    """The workspace's own dbt target folder (its partial-parse file belongs to this workspace's vars)."""
    return config.warehouse_dir / "dbt_target"


def _project_fingerprint(project_dir: Path) -> str:
    digest = hashlib.sha1()
    for path in sorted(project_dir.rglob("*")):
        if path.suffix in PROJECT_SUFFIXES and not {"target", "logs", "dbt_packages"} & set(path.parts):
            stat = path.stat()
            digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()


class DbtWorkspaceRunner:
    """Parses the dbt project once per (project files, workspace vars) and runs builds against it."""

    def __init__(self, project_dir: Path):
        self.project_dir = Path(project_dir)
        self._manifests: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _base_args(self, config: WatershopConfig) -> list[str]:
        """Where the workspace's dbt files go. The log file keeps dbt's info lines (each node's start,
        result and error): its debug lines (every statement, timing and cache event, ~40 a node)
        cost a third of a small build's CPU; the compiled SQL stays under target/. No manifest.json
        or run_results.json: nothing reads them (the manifest stays in memory, the results come back
        from the call), and dbt serialized and wrote the 1.6 MB manifest after every parse and build."""
        return ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir),
                "--target-path", str(target_dir(config)), "--log-path", str(target_dir(config)),
                "--log-level-file", "info", "--no-send-anonymous-usage-stats", "--no-write-json"]

    def _build_args(self, config: WatershopConfig) -> list[str]:
        """A build's arguments: dbt's own loggers off. They format every one of the ~20 events of a
        node, debug ones included, before their level filter drops it (a sixth of a build's CPU);
        `_LogLines` writes the same info lines to stdout and the log file instead."""
        return [*self._base_args(config), "--log-level", "none", "--log-level-file", "none"]

    def manifest(self, config: WatershopConfig):
        """The parsed project for this workspace; parsed again only when a model, macro or yml changed."""
        from dbt.cli.main import dbtRunner

        constant_vars = json.dumps(dbt_vars(config), sort_keys=True)
        key = (_project_fingerprint(self.project_dir), constant_vars)
        with self._lock:
            if key not in self._manifests:
                config.build_db.parent.mkdir(parents=True, exist_ok=True)
                result = dbtRunner().invoke(["parse", *self._base_args(config), "--vars", constant_vars])
                if not result.success:
                    raise RuntimeError(f"dbt parse failed: {result.exception}")
                while len(self._manifests) >= MAX_CACHED_MANIFESTS:
                    self._manifests.pop(next(iter(self._manifests)))  # oldest first
                self._manifests[key] = result.result
            return self._manifests[key]

    def build(self, config: WatershopConfig, scope: Mapping[str, str] | None = None,
              extra_args: list[str] | None = None,
              on_event: Callable[[RawEvent], None] | None = None) -> DbtBuildResult:
        """`dbt build` of the scope (shop_id, date, date_to: all optional; none = everything); the zone
        models only once the lake holds behaviour data."""
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_dict

        manifest = _pristine_copy(self.manifest(config))
        events: list[RawEvent] = []
        lines = _LogLines(target_dir(config) / LOG_FILE)

        def collect(message) -> None:
            lines.write(message)
            if message.info.name not in RESULT_EVENTS:
                return
            event = msg_to_dict(message)
            if event.get("data", {}).get("node_info"):
                events.append(event)
                if on_event:
                    on_event(event)

        run_vars = json.dumps(dbt_vars(config, scope), sort_keys=True)
        try:
            result = dbtRunner(manifest=manifest, callbacks=[collect]).invoke(
                ["build", *self._build_args(config), "--vars", run_vars, *zone_build_args(config, extra_args)])
        finally:
            _release_build_file()
            lines.close()
        results = getattr(result.result, "results", None) or []
        details = null_column_details(config.build_db, results)
        failures = [f"{r.node.name}: {r.status} {r.message}{_detail(details.get(r.node.unique_id))}" for r in results
                    if str(r.status) not in ("success", "pass", "warn", "skipped")]
        error = str(result.exception) if result.exception else None
        return DbtBuildResult(success=result.success, events=events, failures=failures, error=error,
                              failure_details=details)


def _detail(detail: str | None) -> str:
    return f" ({detail})" if detail else ""


def null_column_details(build_db: Path, results) -> dict[str, str]:
    """Each failed not_null_columns test's columns with nulls, in words, from its failing rows (dbt's
    message only counts the columns). Read after the build released the file."""
    failed = [r.node for r in results if str(r.status) in ("fail", "warn") and r.node.compiled_code
              and getattr(getattr(r.node, "test_metadata", None), "name", None) == NOT_NULL_TEST]
    if not failed:
        return {}
    import duckdb

    with duckdb.connect(str(build_db), read_only=True) as db:
        return {node.unique_id: describe_null_columns(db.execute(node.compiled_code).fetchall()) for node in failed}


def describe_null_columns(rows: list[tuple[str, int]]) -> str:
    """The failing rows of a not_null_columns test, (column, null rows) each, in words."""
    return "nulls in " + ", ".join(f"{column} ({count} row{'s' if count != 1 else ''})" for column, count in rows)


class _LogLines:
    """dbt's info lines of one build, as its own loggers print them ("HH:MM:SS  <message>", secrets
    scrubbed): to the current stdout (where `watershop run` reads node results for its progress bar)
    and to the workspace's rotating dbt.log. Only events of SHOWN_LEVELS are formatted at all."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = RotatingFileHandler(path, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS,
                                            encoding="utf8")
        self._lock = threading.Lock()  # dbt fires events from its worker threads

    def write(self, message) -> None:
        if message.info.level not in SHOWN_LEVELS:
            return
        from dbt_common.events.functions import env_scrubber

        line = f"{datetime.now(UTC):%H:%M:%S}  {env_scrubber(message.info.msg)}"
        with self._lock:
            print(line, file=sys.stdout, flush=True)
            self._handler.emit(logging.makeLogRecord({"msg": line, "levelname": message.info.level.upper()}))

    def close(self) -> None:
        self._handler.close()


def _release_build_file() -> None:
    """Close dbt-duckdb's connection to the build file. It closes it itself only once every handle is
    closed, and a build leaves one open: the process would keep the file's lock after the build, and
    every other process's build (a `watershop run` beside a test, a UI run beside the CLI) would fail."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    try:
        DuckDBConnectionManager.env().close()
    except Exception:  # no build has created the environment in this process
        return
    DuckDBConnectionManager.close_all_connections()


def _pristine_copy(manifest):
    """A copy of the parsed manifest for one build.

    dbt marks the nodes it runs as compiled (ephemeral CTEs injected), so a second build on the same
    nodes would skip the injection its SQL still needs. Only the nodes (and the graph built from
    them) change; the lookups are rebuilt lazily from the copied nodes. `copy.deepcopy` is no option:
    Manifest.__reduce_ex__ passes its fields out of order, shifting any lookup already built.
    """
    lookups = {field.name: None for field in dataclasses.fields(manifest) if field.name.endswith("_lookup")}
    return dataclasses.replace(manifest, nodes=copy.deepcopy(manifest.nodes),
                               flat_graph=copy.deepcopy(manifest.flat_graph), **lookups)


@functools.cache
def project_runner() -> DbtWorkspaceRunner:
    """The process's runner for Watershop's dbt project: one parse per workspace per process."""
    return DbtWorkspaceRunner(DBT_PROJECT_DIR)
