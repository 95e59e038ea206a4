"""The dataset catalog is the single declaration: dbt sources, the lake writer/readers and the
erasure rules must agree with it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from watershop_dagster import catalog, lake

SOURCES_YML = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "staging" / "_sources.yml"
#: how DuckDB reads each polars type of the lake (the data_type dbt sources declare)
DUCKDB_TYPES = {
    pl.Utf8: "varchar",
    pl.Int32: "integer",
    pl.Int64: "bigint",
    pl.Float64: "double",
    pl.Boolean: "boolean",
    pl.Date: "date",
}
PARTITION_VALUES = {"shop_id": "s1", "date": date(2024, 5, 1), "camera": "counter"}


def duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if isinstance(dtype, pl.List):
        return f"{duckdb_type(dtype.inner)}[]"
    if isinstance(dtype, pl.Struct):
        return "struct(" + ", ".join(f"{field.name} {duckdb_type(field.dtype)}" for field in dtype.fields) + ")"
    return DUCKDB_TYPES[dtype.base_type()]


def lake_sources() -> list[dict]:
    sources = yaml.safe_load(SOURCES_YML.read_text())["sources"]
    return next(source for source in sources if source["name"] == "lake")["tables"]


def source_mismatches(table: dict, entry: catalog.Dataset) -> list[str]:
    """How a dbt source table differs from its catalog entry (columns with types, asset key, glob)."""
    problems = []
    declared = [(c["name"], c["data_type"]) for c in table["columns"]]
    expected = [(name, duckdb_type(dtype)) for name, dtype in entry.schema.items()]
    # a partition key may also be a column of the files (camera): DuckDB reads it once
    expected += [(key, "date" if key == "date" else "varchar") for key in entry.partition_keys
                 if key not in entry.schema]
    if declared != expected:
        problems.append(f"columns: dbt {sorted(set(declared) ^ set(expected))} differ (or their order)")
    if table["meta"]["dagster"]["asset_key"] != list(entry.asset_key):
        problems.append(f"asset key {table['meta']['dagster']['asset_key']} != {list(entry.asset_key)}")
    hive_levels = "/".join(["*"] * len(entry.partition_keys))
    if not table["meta"]["lake_glob"].endswith(f"/{entry.name}/{hive_levels}/{lake.PART_FILE}"):
        problems.append(f"lake_glob {table['meta']['lake_glob']} does not match the partitions")
    return problems


@pytest.mark.parametrize("table", lake_sources(), ids=lambda t: t["name"])
def test_dbt_source_agrees_with_catalog(table):
    assert source_mismatches(table, catalog.dataset(table["name"])) == []


def test_a_drifted_dbt_source_is_reported():
    table = next(t for t in lake_sources() if t["name"] == "visits")
    entry = catalog.dataset("visits")
    retyped = replace(entry, schema=pl.Schema({**entry.schema, "duration_s": pl.Int32}))
    extra = replace(entry, schema=pl.Schema({**entry.schema, "new_column": pl.Utf8}))
    moved = replace(entry, name="visits_v2")
    assert source_mismatches(table, retyped) and source_mismatches(table, extra)
    assert source_mismatches(table, moved)
    with pytest.raises(KeyError):
        catalog.dataset("not_in_the_catalog")


def _sample_value(dtype: pl.DataType):
    if isinstance(dtype, pl.Datetime):
        return datetime(2024, 5, 1, 9, 30, tzinfo=UTC if dtype.time_zone else None)
    if isinstance(dtype, pl.Array):
        return np.ones(dtype.size, np.float32)
    if isinstance(dtype, pl.List):
        return [_sample_value(dtype.inner)]
    if isinstance(dtype, pl.Struct):
        return {field.name: _sample_value(field.dtype) for field in dtype.fields}
    return {pl.Utf8: "x", pl.Int32: 1, pl.Int64: 1, pl.Float64: 0.5, pl.Boolean: True,
            pl.Date: date(2024, 5, 1)}[dtype.base_type()]


def sample_row(schema: pl.Schema) -> pl.DataFrame:
    """One row with a value in every column (lists of one element, embeddings of the right size)."""
    values = {name: [_sample_value(dtype)] for name, dtype in schema.items()}
    return pl.DataFrame(values, schema=schema)


@pytest.mark.parametrize("entry", [d for d in catalog.DATASETS if d.schema is not None], ids=lambda d: d.name)
def test_every_schema_round_trips_through_the_writer(entry, tmp_path):
    keys = {key: PARTITION_VALUES[key] for key in entry.partition_keys}
    row = sample_row(entry.schema)
    path = lake.write_dataset(row, tmp_path, entry, **keys)
    assert path == lake.partition_file(tmp_path, entry.name, **{k: str(v) for k, v in keys.items()})
    back = lake.read_dataset(tmp_path, entry, **keys)
    assert back.schema == entry.schema
    assert back.equals(row)
    # a partition never written reads as an empty frame with the schema
    assert lake.read_dataset(tmp_path / "empty", entry, **keys).schema == entry.schema


def test_read_dataset_reads_every_camera_below_a_shop_day(tmp_path):
    tracks = catalog.FACE_TRACKS
    for camera in ("b", "a"):
        lake.write_dataset(sample_row(tracks.schema).with_columns(pl.lit(camera).alias("camera")), tmp_path, tracks,
                           shop_id="s1", date=date(2024, 5, 1), camera=camera)
    both = lake.read_dataset(tmp_path, tracks, shop_id="s1", date=date(2024, 5, 1))
    assert both["camera"].to_list() == ["a", "b"]
    chosen = lake.read_dataset(tmp_path, tracks, shop_id="s1", date=date(2024, 5, 1), camera=["b", "a"])
    assert chosen["camera"].to_list() == ["b", "a"]
    with pytest.raises(ValueError):
        lake.read_dataset(tmp_path, tracks, shop="s1")


def test_read_days_adds_the_date_and_honours_bounds(tmp_path):
    links = catalog.TRANSACTION_VISIT_LINKS
    days = [date(2024, 5, d) for d in (1, 2, 3)]
    for day in days:
        lake.write_dataset(sample_row(links.schema), tmp_path, links, shop_id="s1", date=day)
    assert lake.read_days(tmp_path, links, "s1")["date"].to_list() == days
    assert lake.read_days(tmp_path, links, "s1", upto=days[1], exclude=days[0])["date"].to_list() == [days[1]]
    assert lake.read_days(tmp_path, links, "s2").schema == pl.Schema({**links.schema, "date": pl.Date})


def test_catalog_entries_are_consistent():
    names = [d.name for d in catalog.DATASETS]
    assert len(names) == len(set(names))
    keys = [d.asset_key for d in catalog.DATASETS if d.asset_key]
    assert len(keys) == len(set(keys))
    for entry in catalog.DATASETS:
        assert entry.retention in {catalog.Retention.KEPT, *catalog.RETENTION_DAYS_FIELD}
        if entry.personal is None or entry.schema is None:
            continue
        columns = set(entry.schema)
        assert set(entry.personal.match_on) <= columns, entry.name
        assert set(entry.personal.scrub or {}) <= columns, entry.name
        for reference in entry.personal.references:
            assert {reference.column, *reference.dependents} <= columns, entry.name
