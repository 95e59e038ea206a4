"""The per-frame person observation table: the interface between people tracking and zone analytics."""

from __future__ import annotations

import polars as pl

#: one row per person track per processed frame (box in pixels of the frame it was seen in)
PERSON_OBSERVATIONS = pl.Schema(
    {
        "camera": pl.String,
        "track_id": pl.String,  # unique within a camera-day
        "ts": pl.Datetime("us", "UTC"),
        "x1": pl.Float64,
        "y1": pl.Float64,
        "x2": pl.Float64,
        "y2": pl.Float64,
        "frame_width": pl.Int64,
        "frame_height": pl.Int64,
        "identity": pl.String,  # registry customer id / known person; filled later from faces
        "score": pl.Float64,
    }
)


def empty_observations() -> pl.DataFrame:
    return pl.DataFrame(schema=PERSON_OBSERVATIONS)
