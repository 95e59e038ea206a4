"""The per-frame person observation table: the interface between people tracking and zone analytics."""

from __future__ import annotations

import polars as pl

from watershop_dagster.zones import schemas as zone_schemas

#: one row per person track per processed frame (box in pixels of the frame it was seen in)
PERSON_OBSERVATIONS = pl.Schema(zone_schemas.PERSON_OBSERVATIONS)


def empty_observations() -> pl.DataFrame:
    return pl.DataFrame(schema=PERSON_OBSERVATIONS)
