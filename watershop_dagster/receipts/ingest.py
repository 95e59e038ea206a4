"""Land a shop's receipt files in the lake: valid lines to `receipts`, everything else to quarantine.

Every way in ends as CSV files under landing/receipts/<shop>/: exports dropped there (read through the
shop's `receipts.columns` mapping) and the batches a database or API pull writes to its `pulled/`
folder (already in the canonical columns). So one validation decides for all of them.

Placement, as for the water shop's transactions: a file whose name carries a date belongs to that
day (a line timestamped on another day is quarantined, never silently dropped); lines of undated
files go to the day of their own timestamp; problems of an undated file that no line can carry (an
unusable header, unreadable lines) go to its home day, the local day it was last written. A shop-day's
two partitions are rewritten whole on every run: re-running is idempotent, and a removed file's
lines disappear.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterable

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.config import ShopConfig, WatershopConfig
from watershop_dagster.pos.ingest import parse_date_from_name
from watershop_dagster.receipts.schema import (
    BATCH_QUARANTINE_SCHEMA,
    RECEIPTS_SCHEMA,
    ReceiptsBatch,
    validate_receipts_csv,
)
from watershop_dagster.receipts.zones import ZONE_MAP_SCHEMA, ZoneMap

PULLED_FOLDER = "pulled"  # landing/receipts/<shop>/pulled/: batches of database and API pulls (canonical columns)


@dataclass(frozen=True)
class ReceiptsDay:
    """What one shop-day's run wrote."""

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    files: list[str]
    valid_path: Path
    quarantine_path: Path


def _is_landing_csv(name: str) -> bool:
    """Hidden and temp files (ours, editors', Excel's ~$ locks) are never read."""
    return name.lower().endswith(".csv") and not name.startswith((".", "~"))


def landing_names(config: WatershopConfig, shop_id: str) -> list[str]:
    """The shop's receipt CSVs (exports and pulled batches) relative to landing/receipts, sorted."""
    config.shop(shop_id)  # an unknown shop is an error, not an empty list
    root = config.receipts_landing
    names = []
    for folder, dirs, files in os.walk(root / shop_id):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        prefix = os.path.relpath(folder, root).replace(os.sep, "/")
        names.extend(f"{prefix}/{name}" for name in files if _is_landing_csv(name))
    return sorted(names)


def _is_pulled(name: str) -> bool:
    return name.split("/")[1:2] == [PULLED_FOLDER]


def _home_day(path: Path, shop: ShopConfig) -> date:
    return datetime.fromtimestamp(path.stat().st_mtime, shop.tz).date()


def _place(batch: ReceiptsBatch, named: date | None, home: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid rows, quarantined rows), each with the day it is reported on in `date`."""
    valid = batch.valid
    if named is None:  # a bad line on the day of its own timestamp where it has one
        return valid, batch.quarantine.with_columns(pl.col("date").fill_null(home))
    quarantine = batch.quarantine.with_columns(pl.lit(named).alias("date"))
    elsewhere = valid.filter(pl.col("date") != named)
    moved = elsewhere.select(
        "source_file", "source_line", pl.lit("").alias("raw"),
        pl.format("timestamp '{}' is on {} but the file is dated {}",
                  pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S"), pl.col("date"), pl.lit(named)).alias("reason"),
        pl.lit(named).alias("date"),
    ).cast(BATCH_QUARANTINE_SCHEMA)
    return valid.filter(pl.col("date") == named), pl.concat([quarantine, moved])


def ingest_receipt_days(config: WatershopConfig, shop_id: str, days: Iterable[date]) -> dict[date, ReceiptsDay]:
    """Validate the shop's receipt files for `days` and replace both lake partitions of each day.

    A day without files still gets its (empty) receipts partition and loses any quarantine file, so a
    re-run clears removed rows."""
    shop, wanted = config.shop(shop_id), sorted(set(days))
    columns = shop.receipts.columns if shop.receipts else {}
    root = config.receipts_landing
    valid_parts, quarantine_parts, files_of = [], [], {day: [] for day in wanted}
    for name in landing_names(config, shop_id):
        named = parse_date_from_name(name)
        if named is not None and named not in files_of:
            continue
        path = root / name
        batch = validate_receipts_csv(path, {} if _is_pulled(name) else columns, source_file=name)
        valid, quarantine = _place(batch, named, _home_day(path, shop))
        valid_parts.append(valid.filter(pl.col("date").is_in(wanted)))
        quarantine_parts.append(quarantine.filter(pl.col("date").is_in(wanted)))
        for day in ({named} if named else set(valid["date"]) | set(quarantine["date"])) & set(files_of):
            files_of[day].append(name)
    valid = pl.concat([pl.DataFrame(schema=RECEIPTS_SCHEMA), *valid_parts])
    quarantine = pl.concat([pl.DataFrame(schema=BATCH_QUARANTINE_SCHEMA), *quarantine_parts])
    results = {}
    for day in wanted:
        keys = {"shop_id": shop_id, "date": day}
        day_valid = valid.filter(pl.col("date") == day).sort("timestamp", "receipt_id", "source_file", "source_line")
        day_quarantine = quarantine.filter(pl.col("date") == day).drop("date").sort(
            "source_file", "source_line", nulls_last=False)
        results[day] = ReceiptsDay(
            valid=day_valid, quarantine=day_quarantine, files=files_of[day],
            valid_path=lake.write_dataset(day_valid, config.lake_root, catalog.RECEIPTS, **keys),
            quarantine_path=lake.write_dataset(day_quarantine, config.lake_root, catalog.RECEIPTS_QUARANTINE, **keys),
        )
    return results


def shop_zone_map(config: WatershopConfig, shop_id: str) -> ZoneMap:
    """The shop's versioned category -> zone table: its `receipts.zone_map` CSV, else the categories of
    its cameras' zones (valid forever); empty when neither says anything."""
    shop = config.shop(shop_id)
    if shop.receipts is not None and shop.receipts.zone_map is not None:
        return ZoneMap.read_csv(config.resolve(shop.receipts.zone_map))
    mapped = {zone.category: zone.name for zone in shop.zones() if zone.category}
    return ZoneMap.constant(mapped) if mapped else ZoneMap.from_frame(pl.DataFrame(schema=ZONE_MAP_SCHEMA))


def write_zone_map(config: WatershopConfig, shop_id: str) -> tuple[ZoneMap, Path]:
    """Publish the shop's zone table to the lake (`category_zones`, one file per shop), atomically."""
    zone_map = shop_zone_map(config, shop_id)
    return zone_map, lake.write_dataset(zone_map.table, config.lake_root, catalog.CATEGORY_ZONES, shop_id=shop_id)


def export_days(config: WatershopConfig, shop_id: str, name: str) -> set[date]:
    """The days an export (a name relative to landing/receipts) feeds: the date in its name, else the
    days its lines and problems are placed on."""
    named = parse_date_from_name(name)
    if named is not None:
        return {named}
    shop = config.shop(shop_id)
    path = config.receipts_landing / name
    batch = validate_receipts_csv(path, shop.receipts.columns if shop.receipts else {}, source_file=name)
    valid, quarantine = _place(batch, None, _home_day(path, shop))
    return set(valid["date"]) | set(quarantine["date"])


def landing_changes(config: WatershopConfig, seen: dict[str, list]) -> tuple[dict[str, list], set[tuple[str, date]]]:
    """Exports' (mtime, size) now, and the shop-days of exports that are new or changed since `seen`.
    Pulled batches are left out: the receipts asset writes them itself."""
    current: dict[str, list] = {}
    requests: set[tuple[str, date]] = set()
    for shop in config.receipt_shops:
        for name in landing_names(config, shop.id):
            if _is_pulled(name):
                continue
            stat = (config.receipts_landing / name).stat()
            current[name] = [stat.st_mtime_ns, stat.st_size]
            if seen.get(name) != current[name]:
                requests.update((shop.id, day) for day in export_days(config, shop.id, name)
                                if day >= config.partitions_start)
    return current, requests
