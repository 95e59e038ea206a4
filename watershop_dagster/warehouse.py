"""The DuckDB warehouse: one private build file, one served file that BI tools read.

DuckDB allows a single writer, and a reader holding the file blocks other writers. So dbt writes
only to the build file (under an exclusive lock, as partitions may run in parallel), and
`publish_marts` copies it to a temp file beside the served one and renames it into place. A BI
tool with an open read-only connection keeps reading its old snapshot; new connections see the
new one; nobody ever sees a half-written state and nobody blocks the pipeline.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from watershop_dagster import locks
from watershop_dagster.config import WatershopConfig


@contextmanager
def build_lock(config: WatershopConfig) -> Iterator[None]:
    """Serialise writers of the build file across processes (Dagster runs, CLI, tests)."""
    with locks.build_lock(config.build_db):
        yield


def publish_marts(config: WatershopConfig) -> Path:
    """Checkpoint the build file and atomically replace the served marts file with a copy of it.

    Call while holding `build_lock`.
    """
    source, target = config.build_db, config.marts_db
    with duckdb.connect(str(source)) as connection:
        connection.execute("CHECKPOINT")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def connect_marts(config: WatershopConfig) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the served marts, safe to hold while the pipeline runs."""
    return duckdb.connect(str(config.marts_db), read_only=True)


def rebuild_marts(config: WatershopConfig, shop_id: str | None = None) -> None:
    """Rebuild every mart of one shop (or all) from the lake and publish; e.g. after an erasure."""
    from watershop_dagster.dbt_runner import project_runner

    with build_lock(config):
        result = project_runner().build(config, {"shop_id": shop_id} if shop_id else None)
        if not result.success:
            raise RuntimeError(f"dbt build failed: {result.error or result.failures or 'see the dbt log'}")
        publish_marts(config)
