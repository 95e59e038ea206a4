"""Shop-day partitions shared by every asset: one partition per shop and local calendar day."""

from __future__ import annotations

from datetime import date

import dagster as dg

from watershop_dagster.config import WatershopConfig

DATE_DIM = "date"
SHOP_DIM = "shop"


def shop_day_partitions(config: WatershopConfig) -> dg.MultiPartitionsDefinition:
    """Days are local to each shop; end_offset=1 admits today, so a run after closing can take it."""
    return dg.MultiPartitionsDefinition(
        {
            DATE_DIM: dg.DailyPartitionsDefinition(
                start_date=config.partitions_start.isoformat(), timezone=config.shops[0].timezone, end_offset=1
            ),
            SHOP_DIM: dg.StaticPartitionsDefinition(config.shop_ids),
        }
    )


def shop_day_key(shop_id: str, day: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE_DIM: day.isoformat(), SHOP_DIM: shop_id})


def parse_shop_day(partition_key: str | dg.MultiPartitionKey) -> tuple[str, date]:
    if not isinstance(partition_key, dg.MultiPartitionKey):
        partition_key = dg.MultiPartitionKey(dict(zip((DATE_DIM, SHOP_DIM), partition_key.split("|"))))
    dims = partition_key.keys_by_dimension
    return dims[SHOP_DIM], date.fromisoformat(dims[DATE_DIM])
