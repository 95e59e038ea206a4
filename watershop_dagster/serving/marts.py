"""Read-only access to the served marts for long-lived servers (dashboard, API, reports).

The pipeline publishes each build as immutable Parquet files under `warehouse/builds/<id>/` and
points `warehouse/current` at it (see `watershop_dagster.warehouse`). `MartsReader` resolves
`current` once per request and keeps one in-memory DuckDB instance per build, whose views read that
build's files: every query of one request, joins of several marts included, sees one build, and the
next request after a publish sees the new one. An instance is closed once its last request ends;
old builds outlive it by the publish's grace period. A served file without `current` beside it (a
plain DuckDB file, e.g. a copy) is ATTACHed read-only instead, and followed across replacements.
Nothing here opens a file for writing, so the pipeline is never blocked.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from watershop_dagster.serving import builds

POS_MARTS = (
    "transactions",
    "payment_summary",
    "total_spent",
    "unpaid",
    "repeat_defaulters",
    "cans_per_day",
    "cans_per_customer",
    "daily_revenue",
    "monthly_revenue",
    "quarantine_summary",
)
VISIT_MARTS = (
    "visit_log",
    "daily_visits",
    "monthly_visits",
    "quarterly_visits",
    "unique_customers",
    "customer_visit_counts",
    "repeat_visits",
    "new_customers",
    "returning_customers",
    "traffic_per_hour",
    "first_last_customer",
    "peak_hours",
    "transaction_visit_links",
    "visits_without_payment",
    "recognition_results",
)
#: built from the zone datasets (cameras with zones); empty, not missing, in other workspaces
ZONE_MARTS = (
    "zone_visits",
    "zone_dwell_daily",
    "zone_traffic_hourly",
    "loitering_events",
    "footfall_hourly",
    "zone_transitions",
    "store_visits",
    "fct_zone_hour",
    "fct_store_day_behaviour",
    "zone_dwell_sales_correlation",
    "sales_per_labour_hour",
)


class MartsUnavailable(RuntimeError):
    """The served marts file does not exist (yet) or cannot be opened."""


class MartMissing(LookupError):
    """A mart the caller needs is not in the served file (e.g. visit marts in a POS-only workspace)."""

    def __init__(self, marts: Sequence[str], path: Path):
        self.marts = tuple(marts)
        self.path = path
        if any(m in VISIT_MARTS for m in self.marts):
            hint = "this workspace has no visit marts yet: they are built from camera footage by the vision pipeline"
        elif any(m in ZONE_MARTS for m in self.marts):
            hint = "this workspace has no zone marts yet: they are built once cameras with zones have been processed"
        else:
            hint = "run `watershop run` to build the marts"
        super().__init__(f"mart(s) {', '.join(self.marts)} not found in {path}: {hint}")


def file_version(path: Path) -> tuple[int, int, int, int] | None:
    """Identity of the file's current content: replaced-by-rename changes the inode."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(eq=False)
class _Generation:
    version: tuple
    connection: duckdb.DuckDBPyConnection
    tables: frozenset[str]
    catalog: str | None  # the ATTACHed plain file's catalog; None: views in the in-memory catalog
    users: int = 0
    stale: bool = False


@dataclass
class MartsConnection:
    """One snapshot of the marts for one request/page: a cursor plus what the file contains."""

    cursor: duckdb.DuckDBPyConnection
    tables: frozenset[str]
    path: Path
    version: tuple = field(default=())

    def has(self, *marts: str) -> bool:
        return all(m in self.tables for m in marts)

    def missing(self, *marts: str) -> list[str]:
        return [m for m in marts if m not in self.tables]

    def require(self, *marts: str) -> None:
        missing = self.missing(*marts)
        if missing:
            raise MartMissing(missing, self.path)

    def df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pl.DataFrame:
        return self.cursor.sql(sql, params=params or None).pl()

    def rows(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[dict[str, Any]]:
        result = self.cursor.execute(sql, params or [])
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]

    def one(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple | None:
        rows = self.cursor.execute(sql, params or []).fetchall()  # fetch all: DuckDB 2 refuses new work
        return rows[0] if rows else None                          # while a result is unfinished

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]


class MartsReader:
    """Thread-safe, read-only, always-current access to the marts served at `path` (marts.duckdb)."""

    def __init__(self, path: str | os.PathLike, threads: int = 2):
        self.path = Path(path)
        self.catalog = self.path.stem
        self.threads = threads
        self._lock = threading.Lock()
        self._current: _Generation | None = None

    def _version(self) -> tuple:
        link = builds.current_link(self.path.parent)
        if os.path.lexists(link):
            return ("build", os.path.realpath(link))
        version = file_version(self.path)
        if version is None:
            raise MartsUnavailable(f"no marts at {self.path} yet: run `watershop run` to build them")
        return ("file", version)

    def _open(self, version: tuple) -> _Generation:
        connection = duckdb.connect(":memory:", config={"threads": self.threads})
        try:
            if version[0] == "build":
                build = builds.read_build(Path(version[1]))
                for mart in build.marts:
                    connection.execute(f"CREATE VIEW {_quote(mart.name)} AS "
                                       f"{builds.mart_view_sql(build.parquet(mart.name), mart)}")
                return _Generation(version, connection, frozenset(m.name for m in build.marts), catalog=None)
            connection.execute(f"ATTACH ? AS {_quote(self.catalog)} (READ_ONLY)", [str(self.path)])
            tables = connection.execute(
                "select table_name from information_schema.tables where table_catalog = ? and table_schema = 'main'",
                [self.catalog],
            ).fetchall()
        except (OSError, ValueError, duckdb.Error) as exc:
            connection.close()
            raise MartsUnavailable(f"cannot open the marts at {self.path}: {exc}") from exc
        return _Generation(version, connection, frozenset(name for (name,) in tables), catalog=self.catalog)

    def _acquire(self) -> _Generation:
        version = self._version()
        with self._lock:
            current = self._current
            if current is None or current.version != version:
                fresh = self._open(version)
                if current is not None:
                    current.stale = True
                    if current.users == 0:
                        current.connection.close()
                self._current = current = fresh
            current.users += 1
            return current

    def _release(self, generation: _Generation) -> None:
        with self._lock:
            generation.users -= 1
            if generation.stale and generation.users == 0:
                generation.connection.close()

    @contextmanager
    def connect(self) -> Iterator[MartsConnection]:
        generation = self._acquire()
        try:
            cursor = generation.connection.cursor()
            try:
                if generation.catalog:
                    cursor.execute(f"USE {_quote(generation.catalog)}").fetchall()
                yield MartsConnection(cursor, generation.tables, self.path, generation.version)
            finally:
                cursor.close()
        finally:
            self._release(generation)

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.stale = True
                if self._current.users == 0:
                    self._current.connection.close()
                self._current = None
