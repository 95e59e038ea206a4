"""The Parquet lake: one hive-partitioned dataset per asset, written atomically.

Layout: <lake>/<dataset>/shop_id=<shop>/date=<YYYY-MM-DD>[/camera=<cam>]/part.parquet.
One file per partition, replaced with an atomic rename, so re-running a partition is idempotent
and readers (DuckDB globs, dbt sources) never see a half-written file. Temporary files do not end
in .parquet, so `*.parquet` globs skip them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import polars as pl

PART_FILE = "part.parquet"


def partition_dir(lake_root: Path, dataset: str, **keys: str) -> Path:
    path = Path(lake_root) / dataset
    for name, value in keys.items():
        path = path / f"{name}={value}"
    return path


def partition_file(lake_root: Path, dataset: str, **keys: str) -> Path:
    return partition_dir(lake_root, dataset, **keys) / PART_FILE


def dataset_glob(lake_root: Path, dataset: str, depth: int = 2) -> str:
    """Glob for every partition file of a dataset with `depth` hive levels."""
    return str(Path(lake_root) / dataset / Path(*["*"] * depth) / PART_FILE)


def atomic_write_parquet(df: pl.DataFrame, path: Path) -> Path:
    """Write `df` to `path` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_partition(df: pl.DataFrame, lake_root: Path, dataset: str, **keys: str) -> Path:
    return atomic_write_parquet(df, partition_file(lake_root, dataset, **keys))


def read_partition(lake_root: Path, dataset: str, schema: dict | None = None, **keys: str) -> pl.DataFrame:
    """The partition's rows; an empty frame (with `schema`, if given) when it was never written."""
    path = partition_file(lake_root, dataset, **keys)
    if path.exists():
        return pl.read_parquet(path)
    return pl.DataFrame(schema=schema or {})


def delete_partition(lake_root: Path, dataset: str, **keys: str) -> bool:
    path = partition_file(lake_root, dataset, **keys)
    if path.exists():
        path.unlink()
        return True
    return False
