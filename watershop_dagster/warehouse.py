"""The DuckDB warehouse: dbt's private build file, and the marts it publishes for readers.

DuckDB allows a single writer, and a reader holding a file blocks writers. So dbt writes only to the
build file (under an exclusive lock, as partitions may run in parallel), and `publish_marts` serves
what it built without ever writing a file a reader has open:

    warehouse/builds/<build_id>/<mart>.parquet   every mart of one build, immutable once renamed in
    warehouse/builds/<build_id>/manifest.json    the build's marts, columns and publish time
    warehouse/current -> builds/<build_id>       switched atomically (a new symlink renamed over it)
    warehouse/marts.duckdb                       only VIEWs: read_parquet('<warehouse>/current/<mart>.parquet')

A reader that keeps connections (a BI tool's pool, duckdb-engine) keeps the same `marts.duckdb`
instance for ever - DuckDB caches one instance per path while any connection is open - so the file
itself must never need to change for a new build to show: each query binds the views again and so
opens the files `current` points at now. The file is rewritten (temp + rename) only when the set of
marts or their columns change; a pool that still holds the old file lists a new mart only once it
reconnects, and on DuckDB 1.x fails on a mart whose columns changed until then (1.x checks a view
against its creation-time types; DuckDB 2 binds `*` afresh).

Guarantees: each mart a query reads comes whole from one build. Known issue: DuckDB 2.0 reads a
Parquet footer when it binds a query and opens the path again when it scans, so a query running
while `current` switches fails ("TProtocolException: Invalid data"; about one query per publish
under back-to-back load, docs/faults.md); a retry succeeds. Two marts joined in one query are opened microseconds apart, so a switch landing in between
can pair build N's one with build N+1's other; readers that need several marts from one build use
`builds/<build_id>/` directly, `serving.marts.MartsReader` (pins a build per request) or the
PostgreSQL copy (one transaction). Old builds are deleted only once they are neither among the last
`keep_builds` nor younger than `build_grace_minutes`, so a query never loses the file it is reading.

The served file is written in DuckDB's v1.0 storage format (header version 64), which every DuckDB
from 0.10 to 2.x opens: BI tools bundling an older DuckDB (Superset's duckdb-engine, Metabase's and
Grafana's drivers) read it too.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from watershop_dagster import locks
from watershop_dagster.atomic import fsync_dir
from watershop_dagster.config import WatershopConfig
from watershop_dagster.serving.builds import (
    BUILD_ID,
    MANIFEST,
    Build,
    Mart,
    build_time,
    builds_dir,
    current_link,
    mart_view_sql,
    quote_identifier,
    quote_literal,
)

POSTGRES_URL_ENV_VAR = "WATERSHOP_POSTGRES_URL"
#: storage format of the served file: v1.0.0 (header version 64) opens in DuckDB 0.10 and later
SERVED_STORAGE_VERSION = "v1.0.0"
SERVED_STORAGE_NUMBER = 64


@contextmanager
def build_lock(config: WatershopConfig) -> Iterator[None]:
    """Serialise writers of the build file across processes (Dagster runs, CLI, tests)."""
    with locks.build_lock(config.build_db):
        yield


def postgres_url(config: WatershopConfig) -> str | None:
    return os.environ.get(POSTGRES_URL_ENV_VAR) or config.serving.postgres_url


def new_build_id(now: datetime | None = None) -> str:
    """Sortable by publish time (UTC, microseconds), unique across processes."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:8]}"



def _columns(db: duckdb.DuckDBPyConnection, relation: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, type_) for name, type_, *_ in db.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall())


def export_build(build_db: Path, warehouse: Path, build_id: str | None = None) -> Build:
    """Write every mart of the build file (tables of schema `main`; dbt's staging and intermediate
    views live elsewhere and are not served) to `builds/<id>/`, atomically: a temp folder, each file
    fsync'd, a manifest, then one rename."""
    build_id = build_id or new_build_id()
    published_at = build_time(build_id) or datetime.now(timezone.utc)
    root = builds_dir(warehouse)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{build_id}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        marts = []
        with duckdb.connect(str(build_db)) as db:  # as dbt opens it: one process caches one instance per config
            db.execute("CHECKPOINT")
            names = [n for (n,) in db.execute(
                "select table_name from information_schema.tables where table_schema = 'main' "
                "and table_type = 'BASE TABLE' order by table_name").fetchall()]
            for name in names:
                target = tmp / f"{name}.parquet"
                db.execute(f"COPY (SELECT * FROM main.{quote_identifier(name)}) TO {quote_literal(str(target))} (FORMAT parquet)")
                built = _columns(db, f"main.{quote_identifier(name)}")
                served = dict(_columns(db, f"read_parquet({quote_literal(str(target))})"))
                casts = tuple((column, type_) for column, type_ in built if served.get(column) != type_)
                marts.append(Mart(name, built, casts))
        for mart in marts:
            with open(tmp / f"{mart.name}.parquet", "rb") as handle:
                os.fsync(handle.fileno())
        manifest = {"build_id": build_id, "published_at": published_at.isoformat(),
                    "marts": [{"name": m.name, "columns": [list(c) for c in m.columns],
                               "casts": [list(c) for c in m.casts]} for m in marts]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        with open(tmp / MANIFEST, "rb") as handle:
            os.fsync(handle.fileno())
        fsync_dir(tmp)
        final = root / build_id
        os.replace(tmp, final)
        fsync_dir(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Build(build_id, final, published_at, tuple(marts))


def switch_current(warehouse: Path, build: Build) -> None:
    """Point `current` at `build` in one rename: a reader resolves the old target or the new one."""
    link = current_link(warehouse)
    tmp = warehouse / f".current.{uuid.uuid4().hex}.tmp"
    os.symlink(os.path.relpath(build.path, warehouse), tmp)
    try:
        os.replace(tmp, link)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
    fsync_dir(warehouse)


def _catalog_signature(db: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, tuple]:
    """Every object of a catalog's main schema: its kind, its SQL (views) and its columns."""
    views = dict(db.execute("select view_name, sql from duckdb_views() where database_name = ? "
                            "and schema_name = 'main' and not internal", [catalog]).fetchall())
    columns: dict[str, list] = {}
    for table, column, type_ in db.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_catalog = ? and table_schema = 'main' order by table_name, ordinal_position",
            [catalog]).fetchall():
        columns.setdefault(table, []).append((column, type_))
    return {name: (views.get(name), tuple(cols)) for name, cols in columns.items()}


def write_served_file(served: Path, warehouse: Path, build: Build) -> bool:
    """Make `served` hold one view per mart of `build`, read through `current`; rewrite it (temp +
    rename, v1.0 storage) only if that changes it. Returns whether it was rewritten."""
    current = Path(os.path.abspath(current_link(warehouse)))
    with duckdb.connect(":memory:") as db:
        for mart in build.marts:
            db.execute(f"CREATE VIEW {quote_identifier(mart.name)} AS {mart_view_sql(current / f'{mart.name}.parquet', mart)}")
        wanted = _catalog_signature(db, "memory")
        if served.exists():
            try:
                db.execute(f"ATTACH {quote_literal(str(served))} AS served (READ_ONLY)")
                have = _catalog_signature(db, "served")
                db.execute("DETACH served")
            except duckdb.Error:
                have = None  # unreadable: replace it
            if have == wanted:
                return False
        tmp = served.with_name(f".{served.name}.{uuid.uuid4().hex}.tmp")
        try:
            db.execute(f"ATTACH {quote_literal(str(tmp))} AS fresh (STORAGE_VERSION '{SERVED_STORAGE_VERSION}')")
            for mart in build.marts:
                db.execute(f"CREATE VIEW fresh.main.{quote_identifier(mart.name)} AS "
                           f"{mart_view_sql(current / f'{mart.name}.parquet', mart)}")
            db.execute("DETACH fresh")
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, served)
            fsync_dir(served.parent)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
    return True


def collect_old_builds(warehouse: Path, keep: int, grace_minutes: float, now: float | None = None) -> list[Path]:
    """Delete builds that are neither current, among the newest `keep`, nor younger than the grace
    period, and what killed publishes left (temp folders, files, links) older than it. Returns
    what was removed."""
    root = builds_dir(warehouse)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    cutoff = now - grace_minutes * 60
    link = current_link(warehouse)
    current = os.path.realpath(link) if os.path.lexists(link) else None
    builds = sorted((p for p in root.iterdir() if BUILD_ID.match(p.name)), key=lambda p: p.name)
    removed = []
    for path in builds[:-keep]:
        published = build_time(path.name)
        if str(path.resolve()) == current or published is None or published.timestamp() > cutoff:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    for path in [*root.glob(".*.tmp"), *warehouse.glob(".current.*.tmp"), *warehouse.glob(".*.duckdb.*.tmp")]:
        if path.lstat().st_mtime < cutoff:  # lstat: a stray `current` symlink is judged by its own age
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def publish_marts(config: WatershopConfig, *, purge_old_builds: bool = False) -> Path:
    """Serve the build file's marts as a new build: export, switch `current`, refresh the served
    file if its marts changed, mirror to PostgreSQL when configured, then collect old builds.

    Call while holding `build_lock`. A PostgreSQL failure raises after the DuckDB side switched;
    PostgreSQL keeps serving its previous build. `purge_old_builds` deletes every earlier build at
    once, grace period or not (an erasure: old builds still hold the erased person's rows).
    """
    warehouse = config.warehouse_dir
    build = export_build(config.build_db, warehouse)
    switch_current(warehouse, build)
    write_served_file(config.marts_db, warehouse, build)
    url = postgres_url(config)
    try:
        if url:
            from watershop_dagster.serving.postgres import (
                publish_to_postgres,  # psycopg: only when configured
            )

            publish_to_postgres(url, build, schema=config.serving.postgres_schema)
    finally:
        if purge_old_builds:
            collect_old_builds(warehouse, keep=1, grace_minutes=0)
        else:
            collect_old_builds(warehouse, config.serving.keep_builds, config.serving.build_grace_minutes)
    return config.marts_db


def connect_marts(config: WatershopConfig) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the served marts, safe to hold while the pipeline runs."""
    return duckdb.connect(str(config.marts_db), read_only=True)


def rebuild_marts(config: WatershopConfig, shop_id: str | None = None) -> None:
    """Rebuild every mart of one shop (or all) from the lake and publish, deleting earlier builds;
    e.g. after an erasure."""
    from watershop_dagster.dbt_runner import project_runner

    with build_lock(config):
        result = project_runner().build(config, {"shop_id": shop_id} if shop_id else None)
        if not result.success:
            raise RuntimeError(f"dbt build failed: {result.error or result.failures or 'see the dbt log'}")
        publish_marts(config, purge_old_builds=True)
