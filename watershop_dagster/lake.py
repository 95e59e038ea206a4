"""The Parquet lake: one hive-partitioned dataset per asset, written atomically.

Layout: <lake>/<dataset>/shop_id=<shop>/date=<YYYY-MM-DD>[/camera=<cam>]/part.parquet.
One file per partition, replaced with an atomic rename, so re-running a partition is idempotent
and readers (DuckDB globs, dbt sources) never see a half-written file. Temporary files do not end
in .parquet, so `*.parquet` globs skip them.

Every dataset is declared in `catalog`: `write_dataset` and `read_dataset` / `read_days` conform
frames to its schema, so a partition that was never written reads as an empty frame with the
right columns. Quarantine datasets are sparse: a partition without rows has no file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path

import polars as pl

from watershop_dagster.atomic import atomic_write
from watershop_dagster.catalog import BY_NAME, DATASETS, Dataset
from watershop_dagster.catalog import dataset as catalog_entry

PART_FILE = "part.parquet"
SPARSE_DATASETS = frozenset(entry.name for entry in DATASETS if entry.sparse)


class LakeUnavailableError(RuntimeError):
    """The lake folder vanished or was swapped while a run used it (a NAS unmounted): what dbt would
    read there is not the lake, so nothing built from it may be published."""


def lake_identity(lake_root: Path) -> tuple[int, int]:
    """(device, inode) of the lake folder, to tell later whether it is still the same folder."""
    try:
        stat = Path(lake_root).stat()
    except OSError as error:
        raise LakeUnavailableError(f"the lake folder {lake_root} is unavailable ({error.strerror}); is the NAS "
                                   "mounted? Nothing was published; re-run once it is back") from error
    if not Path(lake_root).is_dir():
        raise LakeUnavailableError(f"the lake folder {lake_root} is not a folder")
    return stat.st_dev, stat.st_ino


def require_same_lake(lake_root: Path, expected: tuple[int, int] | None) -> None:
    """Raise LakeUnavailableError unless the lake folder is there and (given `expected`) still the
    folder it was: a folder created again where an unmounted NAS was is not the lake."""
    if expected is not None and lake_identity(lake_root) != expected:
        raise LakeUnavailableError(f"the lake folder {lake_root} was replaced during the run (the NAS was "
                                   "unmounted and a local folder took its place?); nothing was published")
    lake_identity(lake_root)


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
    if df.is_empty():  # most shop-days quarantine nothing: their file is the same bytes every time
        empty = _empty_parquet(tuple(df.schema.items()))
        return atomic_write(path, lambda tmp: tmp.write_bytes(empty))
    return atomic_write(path, lambda tmp: _write_parquet(df, tmp))


def _write_parquet(df: pl.DataFrame, target: Path | io.BytesIO) -> None:
    df.write_parquet(target, compression="zstd", statistics=True)


@lru_cache(maxsize=64)
def _empty_parquet(schema: tuple[tuple[str, pl.DataType], ...]) -> bytes:
    """The Parquet file of no rows with `schema` (polars takes ~0.5 ms to write one)."""
    buffer = io.BytesIO()
    _write_parquet(pl.DataFrame(schema=dict(schema)), buffer)
    return buffer.getvalue()


def write_partition(df: pl.DataFrame, lake_root: Path, dataset: str, **keys: str) -> Path:
    """Replace one partition's file atomically; a sparse dataset's partition without rows is removed
    instead, so a missing file and an empty one mean the same and readers take both as empty."""
    path = partition_file(lake_root, dataset, **keys)
    if df.is_empty() and dataset in SPARSE_DATASETS:
        path.unlink(missing_ok=True)
        return path
    return atomic_write_parquet(df, path)


def read_partition(lake_root: Path, dataset: str, schema: dict | None = None, **keys: str) -> pl.DataFrame:
    """The partition's rows; when it has no file, an empty frame with `schema` (default: the catalog's)."""
    path = partition_file(lake_root, dataset, **keys)
    if path.exists():
        return pl.read_parquet(path)
    entry = BY_NAME.get(dataset)
    return pl.DataFrame(schema=schema or (entry.schema if entry else None) or {})


def conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """`df` with exactly the schema's columns, in order and types (missing ones null)."""
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in df.columns]
    return df.with_columns(missing).select(list(schema)).cast(dict(schema))


def write_dataset(df: pl.DataFrame, lake_root: Path, dataset: str | Dataset, **partition: str | date) -> Path:
    """Write one partition of a catalog dataset, conformed to its schema (atomic, idempotent)."""
    entry = catalog_entry(dataset)
    return write_partition(conform(df, entry.schema), lake_root, entry.name, **_keys(entry, partition))


def read_dataset(lake_root: Path, dataset: str | Dataset, **partition: str | date | Sequence[str]) -> pl.DataFrame:
    """Rows of a catalog dataset's partitions, conformed to its schema (empty when none exist).

    Give the leading partition keys: every key names one partition; a sequence of values reads
    those partitions in that order; keys left out at the end read every partition below
    (sorted), e.g. all cameras of a shop-day.
    """
    entry = catalog_entry(dataset)
    keys = _keys(entry, partition)
    frames = [pl.read_parquet(path) for path in _partition_files(lake_root, entry, keys)]
    frames = [conform(frame, entry.schema) for frame in frames if frame.height]
    return pl.concat(frames) if frames else pl.DataFrame(schema=entry.schema)


def read_days(
    lake_root: Path, dataset: str | Dataset, shop_id: str, *, upto: date | None = None, exclude: date | None = None
) -> pl.DataFrame:
    """Every day of a shop's per-day dataset (days <= `upto`, not `exclude`) with a `date` column."""
    entry = catalog_entry(dataset)
    frames = [
        read_dataset(lake_root, entry, shop_id=shop_id, date=day).with_columns(pl.lit(day).alias("date"))
        for day, _folder in dated_partitions(lake_root, entry, shop_id)
        if (upto is None or day <= upto) and day != exclude
    ]
    full = pl.Schema({**entry.schema, "date": pl.Date})
    return pl.concat(frames) if frames else pl.DataFrame(schema=full)


def dated_partitions(lake_root: Path, dataset: str | Dataset, shop_id: str) -> list[tuple[date, Path]]:
    """(day, folder) of every valid ``date=`` folder of the shop holding data (partition files;
    any files for a dataset that is not Parquet), oldest first."""
    entry = catalog_entry(dataset)
    pattern = PART_FILE if entry.schema is not None else "*"
    root = partition_dir(lake_root, entry.name, shop_id=shop_id)
    out = []
    for child in sorted(root.glob("date=*")) if root.is_dir() else []:
        try:
            day = date.fromisoformat(child.name.removeprefix("date="))
        except ValueError:
            continue
        if any(path.is_file() for path in child.rglob(pattern)):
            out.append((day, child))
    return out


def part_files(folder: Path) -> list[Path]:
    """Every partition file below a partition folder (any depth: camera partitions too), sorted."""
    return sorted(Path(folder).rglob(PART_FILE))


def _keys(entry: Dataset, partition: dict) -> dict:
    unknown = set(partition) - set(entry.partition_keys)
    if unknown:
        raise ValueError(f"{entry.name} is partitioned by {entry.partition_keys}, not {sorted(unknown)}")
    return {name: value.isoformat() if isinstance(value, date) else value for name, value in partition.items()}


def _partition_files(lake_root: Path, entry: Dataset, keys: dict) -> list[Path]:
    folders = [Path(lake_root) / entry.name]
    for name in entry.partition_keys:
        value = keys.get(name)
        if value is None:
            folders = [child for folder in folders if folder.is_dir()
                       for child in sorted(folder.glob(f"{name}=*")) if child.is_dir()]
        else:
            values = [value] if isinstance(value, str) else list(value)
            folders = [folder / f"{name}={v}" for folder in folders for v in values]
    return [folder / PART_FILE for folder in folders if (folder / PART_FILE).exists()]


def delete_partition(lake_root: Path, dataset: str, **keys: str) -> bool:
    path = partition_file(lake_root, dataset, **keys)
    if path.exists():
        path.unlink()
        return True
    return False
