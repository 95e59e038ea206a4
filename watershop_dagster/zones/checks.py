"""Consistency checks of the zone datasets: each returns the offending rows (empty = passed).

Thin Dagster asset checks call these and report the row count and a sample; kept here so they
are unit-tested without Dagster.
"""

from __future__ import annotations

import polars as pl

_VISIT_KEY = ["camera", "zone", "track_id"]


def visits_outside_track_life(visits: pl.DataFrame, tracks: pl.DataFrame) -> pl.DataFrame:
    """Visits of unknown tracks, or starting before the track's first / ending after its last observation."""
    joined = visits.join(tracks.select("camera", "track_id", "start_ts", "end_ts"),
                         on=["camera", "track_id"], how="left")
    return joined.filter(pl.col("start_ts").is_null() | (pl.col("enter_ts") < pl.col("start_ts"))
                         | (pl.col("exit_ts") > pl.col("end_ts")))


def visits_exit_before_entry(visits: pl.DataFrame) -> pl.DataFrame:
    return visits.filter(pl.col("exit_ts") < pl.col("enter_ts"))


def overlapping_visits(visits: pl.DataFrame) -> pl.DataFrame:
    """Visits of one track in one zone that start before its previous visit there ended."""
    return (
        visits.sort(_VISIT_KEY + ["enter_ts"])
        .with_columns(previous_exit=pl.col("exit_ts").shift(1).over(_VISIT_KEY))
        .filter(pl.col("enter_ts") <= pl.col("previous_exit"))
    )


def loitering_without_visit(loitering: pl.DataFrame, visits: pl.DataFrame) -> pl.DataFrame:
    """Loitering events with no zone visit of the same entry (their presence's first visit), or
    ending before that visit did, or alerting after their presence ended."""
    joined = loitering.join(
        visits.select(_VISIT_KEY + ["enter_ts", pl.col("exit_ts").alias("visit_exit_ts")]),
        left_on=_VISIT_KEY + ["start_ts"], right_on=_VISIT_KEY + ["enter_ts"], how="left",
    )
    return joined.filter(pl.col("visit_exit_ts").is_null() | (pl.col("exit_ts") < pl.col("visit_exit_ts"))
                         | (pl.col("alert_ts") > pl.col("exit_ts")))


def footfall_below_identified_entrants(footfall: pl.DataFrame, visits: pl.DataFrame) -> pl.DataFrame:
    """Cameras whose "in" crossings are fewer than the identified people who came in through an
    entrance zone (their track's first zone visit is an entrance and a visit to another zone
    follows): every one of them entered, so entries must count at least them (camera, entries,
    identified_entrants)."""
    entrants = (
        visits.sort("camera", "track_id", "enter_ts")
        .group_by("camera", "track_id")
        .agg(identity=pl.col("identity").drop_nulls().first(),
             came_in=(pl.col("kind").first() == "entrance") & (pl.col("kind") != "entrance").any())
        .filter(pl.col("came_in") & pl.col("identity").is_not_null())
        .group_by("camera").agg(identified_entrants=pl.col("identity").n_unique())
    )
    entries = footfall.filter(pl.col("direction") == "in").group_by("camera").agg(entries=pl.len())
    return (
        entrants.join(entries, on="camera", how="left")
        .with_columns(pl.col("entries").fill_null(0))
        .filter(pl.col("entries") < pl.col("identified_entrants"))
        .select("camera", "entries", "identified_entrants")
    )
