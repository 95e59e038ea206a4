"""Polars schemas of the people/zone datasets: the input the tracker writes and the lake outputs.

Plain dicts so the central dataset catalog can register them as they are. Timestamps are UTC
microseconds; every dataset is partitioned by shop, day and camera in the lake.
"""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

PERSON_OBSERVATIONS = {
    "camera": pl.Utf8,
    "track_id": pl.Utf8,  # unique within a camera-day
    "ts": UTC_TS,
    "x1": pl.Float64,
    "y1": pl.Float64,
    "x2": pl.Float64,
    "y2": pl.Float64,  # box in pixels of the frame
    "frame_width": pl.Int64,
    "frame_height": pl.Int64,
    "identity": pl.Utf8,  # registry customer id / known person, filled later; null when unknown
    "score": pl.Float64,
}
"""One row per person track per processed frame: the tracker's output and the zone analytics' input."""

PERSON_OBSERVATIONS_REJECTED = {**PERSON_OBSERVATIONS, "reason": pl.Utf8}
"""Observations that cannot be used (missing values, empty box, bad frame size), with the reason."""

ZONE_VISITS = {
    "camera": pl.Utf8,
    "zone": pl.Utf8,
    "kind": pl.Utf8,
    "category": pl.Utf8,
    "track_id": pl.Utf8,
    "identity": pl.Utf8,
    "enter_ts": UTC_TS,
    "exit_ts": UTC_TS,
    "dwell_s": pl.Float64,
    "exit_reason": pl.Utf8,  # left_zone | track_lost
}
"""One row per continuous presence of one track in one zone (dropouts shorter than the debounce
do not split it); enter_ts/exit_ts are the first/last frame whose bottom-centre point was inside."""

LOITERING_EVENTS = {
    "camera": pl.Utf8,
    "zone": pl.Utf8,
    "kind": pl.Utf8,
    "category": pl.Utf8,
    "track_id": pl.Utf8,
    "identity": pl.Utf8,
    "start_ts": UTC_TS,
    "alert_ts": UTC_TS,
    "exit_ts": UTC_TS,
    "dwell_s": pl.Float64,
    "loitering_time_s": pl.Float64,
}
"""One row per presence in a zone (a visit, continued across short tracking breaks at the same
spot: analytics.zone_presences) that lasted at least the zone's loitering_time: start_ts is the
entry of its first visit (whose track_id it carries), alert_ts the moment presence reached
loitering_time, exit_ts and dwell_s those of the presence."""

FOOTFALL = {
    "camera": pl.Utf8,
    "zone": pl.Utf8,
    "track_id": pl.Utf8,
    "identity": pl.Utf8,
    "ts": UTC_TS,
    "direction": pl.Utf8,  # in | out
}
"""One row per entrance crossing: "in" when a track appears in an entrance zone and leaves it into
the store, "out" when a track comes into an entrance zone from elsewhere and is lost there."""

ZONE_OCCUPANCY = {
    "camera": pl.Utf8,
    "zone": pl.Utf8,
    "minute": UTC_TS,
    "mean_people": pl.Float64,
    "max_people": pl.Int64,
    "entries": pl.Int64,
}
"""People in a zone per minute: time-averaged and peak count, and visits that started in the
minute. Minutes with nobody in the zone have no row."""

ZONE_TRANSITIONS = {
    "camera": pl.Utf8,
    "from_zone": pl.Utf8,
    "to_zone": pl.Utf8,
    "transitions": pl.Int64,
    "tracks": pl.Int64,
}
"""How often a track's next zone visit (by entry time) after from_zone was to_zone."""

HEATMAP_CELLS = {
    "camera": pl.Utf8,
    "grid_cols": pl.Int32,
    "grid_rows": pl.Int32,
    "col": pl.Int32,
    "row": pl.Int32,
    "samples": pl.Int64,
    "person_seconds": pl.Float64,
}
"""Bottom-centre density on a grid_cols x grid_rows grid over the frame (row 0 at the top):
observations and person-seconds per cell. Empty cells have no row."""

PERSON_TRACKS = {
    "camera": pl.Utf8,
    "track_id": pl.Utf8,
    "identity": pl.Utf8,
    "start_ts": UTC_TS,
    "end_ts": UTC_TS,
    "duration_s": pl.Float64,
    "observations": pl.Int64,
    "mean_score": pl.Float64,
    "median_box_width": pl.Float64,
    "median_box_height": pl.Float64,
    "path": pl.List(pl.Struct({"ts": UTC_TS, "x": pl.Float64, "y": pl.Float64})),
}
"""One row per person track: life span, box sizes in pixels and the bottom-centre path (relative
0-1 coordinates) sampled on movement: a point is kept when the person moved to another cell of a
fine grid, plus the first and last point."""
