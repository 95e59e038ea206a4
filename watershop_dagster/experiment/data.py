"""Where an experiment's zone-day metric comes from.

The analysis only ever sees a DataFrame of (zone, date, metric): `zone_day_metrics` checks and
normalises one. Today it is built from receipt lines in the lake (`zone_sales_from_receipts`) or read
from a Parquet/CSV file; pointing it at the marts later means producing the same three columns.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from watershop_dagster.experiment.analysis import METRICS_SCHEMA
from watershop_dagster.experiment.design import ExperimentError, ExperimentSpec
from watershop_dagster.receipts.schema import read_receipts
from watershop_dagster.receipts.zones import ZONE_MAP_FILE, ZoneMap


def zone_day_metrics(frame: pl.DataFrame) -> pl.DataFrame:
    """The (zone, date, metric) frame the analysis reads: one row per zone-day, typed, nulls dropped."""
    missing = set(METRICS_SCHEMA) - set(frame.columns)
    if missing:
        raise ExperimentError(f"zone-day metrics need columns {list(METRICS_SCHEMA)}; missing {sorted(missing)}")
    frame = frame.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA).drop_nulls()
    duplicated = frame.select("zone", "date").is_duplicated()
    if duplicated.any():
        first = frame.filter(duplicated).row(0, named=True)
        raise ExperimentError(f"zone-day metrics hold more than one row for {first['zone']} on {first['date']}")
    return frame.sort("zone", "date")


def zone_sales_from_receipts(receipts: pl.DataFrame, zone_map: ZoneMap) -> pl.DataFrame:
    """Net sales (refunds and voids included) per zone and date, each line's category resolved to its
    zone on the line's date; lines of unmapped categories count for no zone."""
    lines = receipts.select(pl.col("timestamp").dt.date().alias("date"), "category", "line_total")
    by_category = lines.group_by("date", "category").agg(pl.col("line_total").sum())
    zoned = zone_map.resolve(by_category).drop_nulls("zone")
    return zone_day_metrics(zoned.group_by("zone", "date").agg(pl.col("line_total").sum().alias("metric")))


def read_metrics_file(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"no metrics file {path}")
    frame = pl.read_parquet(path) if path.suffix.lower() == ".parquet" else pl.read_csv(path, try_parse_dates=True)
    return zone_day_metrics(frame)


def workspace_zone_map(workspace: Path) -> ZoneMap:
    path = Path(workspace) / ZONE_MAP_FILE
    if not path.is_file():
        raise ExperimentError(f"no category -> zone table at {path} (columns category, zone, valid_from, valid_to)")
    return ZoneMap.read_csv(path)


def load_zone_day_metrics(spec: ExperimentSpec, workspace: Path, lake_root: Path, shop_id: str = "*",
                          metrics_file: str | Path | None = None) -> pl.DataFrame:
    """The experiment's metric for every zone-day: from `metrics_file` when given, else zone sales from
    the receipts in the lake (conversion needs footfall, which comes from the marts: pass a file)."""
    if metrics_file is not None:
        return read_metrics_file(metrics_file)
    if spec.metric != "zone_sales":
        raise ExperimentError(f"metric {spec.metric} is not computed from receipts: pass --metrics FILE")
    receipts = read_receipts(lake_root, shop_id)
    if receipts.is_empty():
        raise ExperimentError(f"no receipts in the lake at {lake_root} for shop {shop_id}")
    return zone_sales_from_receipts(receipts, workspace_zone_map(workspace))
