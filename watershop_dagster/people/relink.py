"""Repairs of a camera's track table after ByteTrack: duplicate tracks dropped, split tracks re-linked.

A foreground-blob tracker splits one person into several tracks (a blob lost behind another
person or a shelf edge for a second starts a new track when it reappears) and sometimes runs a
second track on a piece of a person already tracked. Each extra track makes extra short zone
visits, so zone-visit precision suffers. Both repairs work on the PERSON_OBSERVATIONS rows of one
stream (pixels of the full frame) after tracking, as pure functions:

* `duplicate_tracks`: a track whose boxes lie mostly inside a concurrent longer track's box for
  most of its life is the same person seen twice; it is dropped.
* `relink_tracks`: a track that starts within `max_gap_s` after another ended, where that one's
  motion puts it (bottom-centre within `max_jump` box heights of the predicted point), at a
  similar size and, when colours are known, in similar clothing colours, continues it. Pairs are
  taken best first, each track continuing at most one and continued by at most one.
* `apply_links`: the continuing tracks take the first track's id and the gap between them is
  filled with boxes interpolated at the stream's processing interval, so zone presence does not
  break where the tracker lost the person for a moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from watershop_dagster.vision.tracking import chain_roots

#: seconds of a track's end used to estimate its velocity
VELOCITY_WINDOW_S = 1.0
#: speed (box heights per second) a predicted position moves at most: about a brisk walk
MAX_SPEED_HEIGHTS_S = 1.5


@dataclass(frozen=True)
class RelinkSettings:
    max_gap_s: float = 2.5  # a track starting at most this long after another ended may continue it
    max_jump: float = 0.6  # bottom-centre distance from the predicted point, in box heights
    max_height_ratio: float = 1.4  # box heights of the two ends differ at most this much
    max_colour_distance: float = 14.0  # mean chroma (U, V; 0..255) of the two ends differ at most this much
    duplicate_ioa: float = 0.7  # share of a box inside a concurrent track's box that counts as "inside"
    duplicate_share: float = 0.7  # a track inside a longer one for this share of its rows is a duplicate


@dataclass(frozen=True)
class TrackEnd:
    """What re-linking needs of one track: its first and last box (x1, y1, x2, y2) and time (s),
    its velocity at the end (bottom-centre px/s), and mean clothing colours at both ends (or None)."""

    track_id: str
    first_t: float
    last_t: float
    first_box: tuple[float, float, float, float]
    last_box: tuple[float, float, float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    first_colour: tuple[float, ...] | None = None
    last_colour: tuple[float, ...] | None = None


def _foot(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, box[3]


def link_cost(a: TrackEnd, b: TrackEnd, settings: RelinkSettings = RelinkSettings()) -> float | None:
    """How well `b` continues `a` (lower is better), or None when it cannot: `b` starts after `a`
    ends within the gap, near where `a` was heading, at a similar size and colour."""
    gap = b.first_t - a.last_t
    if not 0 < gap <= settings.max_gap_s:
        return None
    height_a, height_b = a.last_box[3] - a.last_box[1], b.first_box[3] - b.first_box[1]
    if min(height_a, height_b) <= 0 or max(height_a, height_b) / min(height_a, height_b) > settings.max_height_ratio:
        return None
    height = (height_a + height_b) / 2
    vx, vy = a.velocity
    speed = math.hypot(vx, vy)
    cap = MAX_SPEED_HEIGHTS_S * height
    if speed > cap:  # a jittery end must not throw the prediction across the frame
        vx, vy = vx * cap / speed, vy * cap / speed
    (ax, ay), (bx, by) = _foot(a.last_box), _foot(b.first_box)
    predicted = (ax + vx * gap, ay + vy * gap)
    # where it stopped or where it was heading, whichever is nearer (people stop when hidden too)
    jump = min(math.hypot(bx - predicted[0], by - predicted[1]), math.hypot(bx - ax, by - ay)) / height
    if jump > settings.max_jump:
        return None
    colour = 0.0
    if a.last_colour is not None and b.first_colour is not None:
        colour = float(np.max(np.abs(np.subtract(a.last_colour, b.first_colour))))
        if colour > settings.max_colour_distance:
            return None
    return jump / settings.max_jump + colour / settings.max_colour_distance + gap / settings.max_gap_s


def relink_tracks(ends: list[TrackEnd], settings: RelinkSettings = RelinkSettings()) -> dict[str, str]:
    """{track id: id of the first track of its chain} for tracks that continue an earlier one;
    pairs are taken by ascending `link_cost`, one successor and one predecessor per track."""
    by_start = sorted(ends, key=lambda e: e.first_t)
    starts = np.array([e.first_t for e in by_start])
    pairs = []
    for a in ends:
        lo, hi = np.searchsorted(starts, [a.last_t, a.last_t + settings.max_gap_s], side="right")
        for b in by_start[lo:hi]:
            if b.track_id != a.track_id:
                cost = link_cost(a, b, settings)
                if cost is not None:
                    pairs.append((cost, a.track_id, b.track_id))
    successor: dict[str, str] = {}
    predecessor: dict[str, str] = {}
    for _, a, b in sorted(pairs):
        if a not in successor and b not in predecessor:
            successor[a], predecessor[b] = b, a
    return chain_roots(predecessor)


def track_ends(observations: pl.DataFrame, colours: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] | None = None) -> list[TrackEnd]:
    """TrackEnd per track of PERSON_OBSERVATIONS rows (one stream); `colours`: track id ->
    (colour at its start, colour at its end), as the tracker measured them."""
    if observations.is_empty():
        return []
    t = (pl.col("ts").dt.epoch("us") / 1e6).alias("t")
    obs = observations.sort("track_id", "ts").with_columns(t, fx=(pl.col("x1") + pl.col("x2")) / 2)
    tail = pl.col("t") >= pl.col("t").max() - VELOCITY_WINDOW_S
    facts = obs.group_by("track_id").agg(
        first_t=pl.col("t").first(), last_t=pl.col("t").last(),
        first_box=pl.concat_list(pl.col("x1", "y1", "x2", "y2").first()),
        last_box=pl.concat_list(pl.col("x1", "y1", "x2", "y2").last()),
        tail_t=pl.col("t").filter(tail).first(),
        tail_x=pl.col("fx").filter(tail).first(), tail_y=pl.col("y2").filter(tail).first(),
        end_x=pl.col("fx").last(), end_y=pl.col("y2").last(),
    )
    colours = colours or {}
    out = []
    for row in facts.iter_rows(named=True):
        span = row["last_t"] - row["tail_t"]
        velocity = ((row["end_x"] - row["tail_x"]) / span, (row["end_y"] - row["tail_y"]) / span) if span > 0 else (0.0, 0.0)
        first_colour, last_colour = colours.get(row["track_id"], (None, None))
        out.append(TrackEnd(row["track_id"], row["first_t"], row["last_t"], tuple(row["first_box"]), tuple(row["last_box"]),
                            velocity, first_colour, last_colour))
    return out


def apply_links(observations: pl.DataFrame, links: Mapping[str, str], step_s: float, max_fill_s: float) -> pl.DataFrame:
    """The rows with each linked track renamed to its chain's first track, and every gap in a track
    (between linked pieces, or frames the tracker missed) of at most `max_fill_s` filled with boxes
    interpolated every `step_s` seconds (score 0: not seen)."""
    renamed = observations.with_columns(
        pl.col("track_id").replace_strict(dict(links), default=pl.col("track_id"))
    ).sort("track_id", "ts") if links else observations.sort("track_id", "ts")
    step_us = max(1, round(step_s * 1e6))
    t0, t1 = pl.col("ts").dt.epoch("us"), pl.col("ts_next").dt.epoch("us")
    gaps = renamed.with_columns(
        **{f"{c}_next": pl.col(c).shift(-1).over("track_id") for c in ("ts", "x1", "y1", "x2", "y2")}
    ).filter((t1 - t0 > 1.5 * step_us) & (t1 - t0 <= round(max_fill_s * 1e6)))
    if gaps.is_empty():
        return renamed
    filled = (
        gaps.with_columns(fill=pl.int_ranges(t0 + step_us, t1 - step_us // 2, step_us))
        .explode("fill", empty_as_null=False)
        .with_columns(w=(pl.col("fill") - t0) / (t1 - t0))
        .with_columns(
            *[(pl.col(c) + (pl.col(f"{c}_next") - pl.col(c)) * pl.col("w")).alias(c) for c in ("x1", "y1", "x2", "y2")],
            ts=pl.from_epoch(pl.col("fill"), time_unit="us").dt.replace_time_zone("UTC"),
            score=pl.lit(0.0),
        )
        .select(observations.columns)
    )
    return pl.concat([renamed, filled.cast(observations.schema)]).sort("track_id", "ts")


def duplicate_tracks(observations: pl.DataFrame, settings: RelinkSettings = RelinkSettings()) -> set[str]:
    """Tracks that are another's duplicate: for at least `duplicate_share` of their rows their box
    lies (`duplicate_ioa`) inside the box of a concurrent track with more rows."""
    if observations.is_empty():
        return set()
    obs = observations.select("track_id", "ts", "x1", "y1", "x2", "y2")
    rows = obs.group_by("track_id").agg(n=pl.len())
    pairs = (
        obs.join(obs, on="ts", suffix="_o").filter(pl.col("track_id") != pl.col("track_id_o"))
        .with_columns(
            ioa=((pl.min_horizontal("x2", "x2_o") - pl.max_horizontal("x1", "x1_o")).clip(lower_bound=0)
                 * (pl.min_horizontal("y2", "y2_o") - pl.max_horizontal("y1", "y1_o")).clip(lower_bound=0))
            / ((pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))))
        .filter(pl.col("ioa") >= settings.duplicate_ioa)
        .group_by("track_id", "track_id_o").agg(inside=pl.len())
        .join(rows, on="track_id").join(rows.rename({"track_id": "track_id_o", "n": "n_o"}), on="track_id_o")
        .filter((pl.col("inside") >= settings.duplicate_share * pl.col("n"))
                & ((pl.col("n_o") > pl.col("n")) | ((pl.col("n_o") == pl.col("n")) & (pl.col("track_id_o") < pl.col("track_id")))))
    )
    return set(pairs["track_id"].to_list())
