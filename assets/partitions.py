"""Partitions shared by every asset.

Shop-day: one partition per shop and local calendar day (POS, identity, marts, reports).
Camera-day: one partition per camera stream ("<shop>.<camera>") and day (vision). Camera-days are
independent, so each camera's footage is processed, retried and backfilled on its own; the shop-day
assets read all of the shop's camera-days through CAMERA_TO_SHOP mappings.

Partitions are configuration (shops, cameras, time zones) that Dagster needs at definition time:
`WorkspacePartitions.from_config` builds them once and each domain's factory takes that one object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from watershop_dagster.config import ShopConfig, WatershopConfig

DATE_DIM = "date"
SHOP_DIM = "shop"
CAMERA_DIM = "camera"
STREAM_SEPARATOR = "."  # neither shop ids nor camera ids may contain it


def _days(config: WatershopConfig) -> dg.DailyPartitionsDefinition:
    """Days are local to each shop; end_offset=1 admits today, so a run after closing can take it."""
    return dg.DailyPartitionsDefinition(
        start_date=config.partitions_start.isoformat(), timezone=config.shops[0].timezone, end_offset=1
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
