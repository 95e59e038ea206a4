"""Partitions shared by every asset.

Shop-day: one partition per shop and local calendar day (POS, identity, marts, reports): the date
key is the shop's own local date, whatever its time zone (`date_dimension_timezone`).
Camera-day: one partition per camera stream ("<shop>.<camera>") and day (vision). Camera-days are
independent, so each camera's footage is processed, retried and backfilled on its own; the shop-day
assets read all of the shop's camera-days through CAMERA_TO_SHOP mappings.

Partitions are configuration (shops, cameras, time zones) that Dagster needs at definition time:
`WorkspacePartitions.from_config` builds them once and each domain's factory takes that one object.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from watershop_dagster.config import ShopConfig, WatershopConfig

DATE_DIM = "date"
SHOP_DIM = "shop"
CAMERA_DIM = "camera"
STREAM_SEPARATOR = "."  # neither shop ids nor camera ids may contain it


def date_dimension_timezone(shops: Iterable[ShopConfig]) -> str:
    """The time zone of the shared date dimension: the shops' own zone when they share one, else the
    fixed offset (whole hours) at least as far ahead of UTC as any shop's zone is at any time of year.

    Why one dimension for several zones: every shop-day and camera-day asset shares one partitions
    definition (a Dagster `MultiPartitionsDefinition` holds one time dimension), and a date key is
    only a calendar-date label: every asset body reads key D as the shop's own local day D (its
    footage, POS rows, Frigate messages and visits are placed by `shop.tz`), and nothing reads the
    key's Dagster time window. What the zone decides is when key D comes to exist (end_offset=1:
    when D begins in that zone). Taking the zone that reaches each date first means each shop's
    local today exists from its own local midnight — near-live runs (Frigate, shelf segments) and a
    shop's after-closing schedule never ask for a key that is not there yet — at the cost of a
    western shop's tomorrow being listed a few hours before it starts (its run would find no data;
    the schedules never ask for it). Each shop's daily run keeps its own schedule in its own zone
    (`assets.jobs.after_closing_schedule`)."""
    zones = sorted({shop.timezone for shop in shops})
    if len(zones) <= 1:
        return zones[0] if zones else "UTC"
    year = date.today().year
    ahead = max(datetime(year, month, 1, 12, tzinfo=ZoneInfo(zone)).utcoffset()
                for zone in zones for month in range(1, 13))
    hours = math.ceil(ahead / timedelta(hours=1))
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # Etc/GMT-9 is UTC+9 (POSIX signs)


def _days(config: WatershopConfig) -> dg.DailyPartitionsDefinition:
    """Days are local to each shop (see date_dimension_timezone); end_offset=1 admits today, so a run
    after closing can take it."""
    return dg.DailyPartitionsDefinition(
        start_date=config.partitions_start.isoformat(), timezone=date_dimension_timezone(config.shops), end_offset=1
    )


def shop_day_partitions(config: WatershopConfig) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({DATE_DIM: _days(config), SHOP_DIM: dg.StaticPartitionsDefinition(config.shop_ids)})


def camera_streams(config: WatershopConfig) -> dict[str, str]:
    """Camera stream key -> shop id, for every camera of every shop."""
    return {camera_stream(shop.id, camera): shop.id for shop in config.shops for camera in shop.cameras}


def camera_stream(shop_id: str, camera: str) -> str:
    return f"{shop_id}{STREAM_SEPARATOR}{camera}"


def camera_day_partitions(config: WatershopConfig) -> dg.MultiPartitionsDefinition | None:
    """None when no shop has a camera (a POS-only workspace has no vision partitions)."""
    streams = camera_streams(config)
    if not streams:
        return None
    return dg.MultiPartitionsDefinition({DATE_DIM: _days(config), CAMERA_DIM: dg.StaticPartitionsDefinition(list(streams))})


def camera_to_shop(config: WatershopConfig) -> dg.MultiPartitionMapping:
    """A shop-day depends on the same day of each of the shop's cameras."""
    return dg.MultiPartitionMapping({
        DATE_DIM: dg.DimensionPartitionMapping(DATE_DIM, dg.IdentityPartitionMapping()),
        CAMERA_DIM: dg.DimensionPartitionMapping(SHOP_DIM, dg.StaticPartitionMapping(camera_streams(config))),
    })


@dataclass(frozen=True)
class WorkspacePartitions:
    """What the definitions take from the workspace config: partitions, the camera -> shop mapping
    and the shops (for their after-closing schedules)."""

    shop_day: dg.MultiPartitionsDefinition
    camera_day: dg.MultiPartitionsDefinition | None  # None: no shop has a camera
    camera_to_shop: dg.MultiPartitionMapping | None
    shops: tuple[ShopConfig, ...]

    @classmethod
    def from_config(cls, config: WatershopConfig) -> WorkspacePartitions:
        cameras = camera_day_partitions(config)
        return cls(shop_day=shop_day_partitions(config), camera_day=cameras,
                   camera_to_shop=camera_to_shop(config) if cameras else None, shops=tuple(config.shops))


def shop_day_key(shop_id: str, day: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE_DIM: day.isoformat(), SHOP_DIM: shop_id})


def camera_day_key(shop_id: str, camera: str, day: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE_DIM: day.isoformat(), CAMERA_DIM: camera_stream(shop_id, camera)})


def _dimensions(partition_key: str | dg.MultiPartitionKey, other_dim: str) -> dict[str, str]:
    if isinstance(partition_key, dg.MultiPartitionKey):
        return dict(partition_key.keys_by_dimension)
    return dict(zip(sorted((DATE_DIM, other_dim)), partition_key.split("|")))  # key order: dimension names sorted


def parse_shop_day(partition_key: str | dg.MultiPartitionKey) -> tuple[str, date]:
    dims = _dimensions(partition_key, SHOP_DIM)
    return dims[SHOP_DIM], date.fromisoformat(dims[DATE_DIM])


def parse_camera_day(partition_key: str | dg.MultiPartitionKey) -> tuple[str, str, date]:
    dims = _dimensions(partition_key, CAMERA_DIM)
    shop_id, camera = dims[CAMERA_DIM].split(STREAM_SEPARATOR, 1)
    return shop_id, camera, date.fromisoformat(dims[DATE_DIM])


# A single-run backfill hands a shop-day asset a range of partitions; a daily run hands it one.
RANGE_POLICY = dg.BackfillPolicy.single_run()


def shop_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[tuple[str, date]]:
    """The run's shop-days in (shop, date) order: one for a daily run, a range for a backfill."""
    return sorted(parse_shop_day(key) for key in context.partition_keys)


def range_metadata(per_day: dict[tuple[str, date], dict]) -> dict:
    """One shop-day's metadata as is; for a range, numeric fields summed and each day's figures listed."""
    if len(per_day) == 1:
        return next(iter(per_day.values()))
    totals: dict = {"shop_days": len(per_day)}
    for figures in per_day.values():
        for name, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[name] = totals.get(name, 0) + value
    totals["per_day"] = dg.MetadataValue.json(
        [{"shop_id": shop_id, "date": day.isoformat(), **{k: v for k, v in figures.items()
                                                           if isinstance(v, (int, float, str))}}
         for (shop_id, day), figures in sorted(per_day.items())][:400])
    return totals
