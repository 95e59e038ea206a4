"""Which store zone a product category belongs to, on which dates.

An experiment moves products, so a category's zone changes over time: the mapping is a versioned
table of (category, zone, valid_from, valid_to) rows, valid_to exclusive and empty for "still valid".
A category has at most one zone on any date (overlaps are rejected when the table is built).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

ZONE_MAP_SCHEMA: dict[str, pl.DataType] = {
    "category": pl.Utf8(),
    "zone": pl.Utf8(),
    "valid_from": pl.Date(),
    "valid_to": pl.Date(),
}
ZONE_MAP_FILE = "category_zones.csv"
OPEN_START = date(1900, 1, 1)


class ZoneMapError(ValueError):
    """A zone table that would put a category in two zones on one date, or has an empty interval."""


@dataclass(frozen=True)
class ZoneMap:
    """The versioned category -> zone table; build with `ZoneMap.from_frame` (validates)."""

    table: pl.DataFrame

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> ZoneMap:
        table = frame.select(list(ZONE_MAP_SCHEMA)).cast(ZONE_MAP_SCHEMA).with_columns(
            pl.col("valid_from").fill_null(OPEN_START)
        ).sort("category", "valid_from")
        empty = table.filter(pl.col("valid_to").is_not_null() & (pl.col("valid_to") <= pl.col("valid_from")))
        if not empty.is_empty():
            row = empty.row(0, named=True)
            raise ZoneMapError(f"category {row['category']!r}: valid_to {row['valid_to']} is not after valid_from")
        overlap = table.with_columns(pl.col("valid_from").shift(-1).over("category").alias("next_from")).filter(
            pl.col("next_from").is_not_null() & (pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col("next_from")))
        )
        if not overlap.is_empty():
            row = overlap.row(0, named=True)
            raise ZoneMapError(f"category {row['category']!r} has two zones from {row['next_from']}")
        return cls(table)

    @classmethod
    def constant(cls, zone_of_category: dict[str, str]) -> ZoneMap:
        """A mapping that never changes."""
        return cls.from_frame(
            pl.DataFrame(
                {"category": list(zone_of_category), "zone": list(zone_of_category.values()),
                 "valid_from": [OPEN_START] * len(zone_of_category), "valid_to": [None] * len(zone_of_category)},
                schema=ZONE_MAP_SCHEMA,
            )
        )

    def zone_on(self, category: str, day: date) -> str | None:
        """The category's zone on `day`; None when it has none."""
        hit = self.table.filter(
            (pl.col("category") == category) & (pl.col("valid_from") <= day)
            & (pl.col("valid_to").is_null() | (pl.col("valid_to") > day))
        )
        return hit["zone"][0] if hit.height else None

    def move(self, category: str, zone: str, day: date) -> ZoneMap:
        """A new version: the category belongs to `zone` from `day` on (its current row is closed)."""
        table = self.table.with_columns(
            pl.when((pl.col("category") == category) & pl.col("valid_to").is_null() & (pl.col("valid_from") < day))
            .then(pl.lit(day)).otherwise(pl.col("valid_to")).alias("valid_to")
        )
        added = pl.DataFrame({"category": [category], "zone": [zone], "valid_from": [day], "valid_to": [None]},
                             schema=ZONE_MAP_SCHEMA)
        return ZoneMap.from_frame(pl.concat([table, added]))

    def resolve(self, frame: pl.DataFrame, category: str = "category", on: str = "date") -> pl.DataFrame:
        """`frame` with a `zone` column: each row's category resolved on its date (null when unmapped)."""
        keyed = frame.with_row_index("_row")
        hits = keyed.select("_row", category, on).join(self.table, left_on=category, right_on="category").filter(
            (pl.col("valid_from") <= pl.col(on)) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col(on)))
        ).select("_row", "zone")
        return keyed.join(hits, on="_row", how="left").sort("_row").drop("_row")

    def write_csv(self, path: Path) -> Path:
        """Atomic: a reader never sees half a table."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            self.table.with_columns(pl.col("valid_from").replace(OPEN_START, None)).write_csv(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def read_csv(cls, path: Path) -> ZoneMap:
        frame = pl.read_csv(path, schema_overrides={"valid_from": pl.Date, "valid_to": pl.Date,
                                                    "category": pl.Utf8, "zone": pl.Utf8})
        return cls.from_frame(frame)
