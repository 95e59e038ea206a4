"""Zone analytics over person observations: visits, loitering, footfall, occupancy, transitions, tracks.

Pure functions over the PERSON_OBSERVATIONS table (one row per person track per processed frame)
and the shop's resolved zones. Every step is a polars/numpy operation over whole columns, so a
camera-day (15 fps x 14 h x several people, millions of rows) runs in seconds.

Definitions (README "Zones" says the same):
- A person is at the bottom-centre point of their box, as in Frigate.
- Entry: `inertia` consecutive observations of the track inside the zone; the visit starts at the
  first of them (enter_ts).
- Exit is debounced in time: the visit goes on through absences (outside the zone or not observed)
  of at most `exit_debounce_seconds`; a longer absence ends it at the last observation inside
  (exit_ts). dwell_s = exit_ts - enter_ts.
- exit_reason: "track_lost" when the track ended while the visit was still open (no absence longer
  than the debounce after exit_ts before the track's last observation), else "left_zone".
- Presence: a zone visit, continued by the next visit to the same zone (of any track) that starts
  at most `presence_gap_seconds` after it ended, within PRESENCE_MAX_JUMP box heights of where it
  ended. A person standing still is the same person when a tracker loses them for a moment, or
  lets another track take over, at the very spot; someone else minutes later is not.
- Loitering: a presence that lasts the zone's loitering_time (>=, exactly at the threshold counts);
  start_ts = its first visit's entry, alert_ts = start_ts + loitering_time, exit_ts = its last
  visit's exit. track_id is the first visit's track (the row the zone_visits mart marks).
- Footfall (entrance zones): "in" when a track appears in an entrance zone (its first observation
  is at most the debounce before the visit's entry) and leaves the zone into the store
  (exit_reason left_zone), at exit_ts; "out" when a track that came from elsewhere enters an
  entrance zone and is lost there (track_lost), at exit_ts. A track that appears and is lost in the
  entrance (a passer-by at the door) and a track that crosses it while staying tracked count as
  neither: cameras watch doors from inside, where people appear and vanish in the doorway.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import numpy as np
import polars as pl

from watershop_dagster.vision.tracking import chain_roots
from watershop_dagster.zones.config import Zone
from watershop_dagster.zones.geometry import points_in_polygon
from watershop_dagster.zones.schemas import (
    FOOTFALL,
    HEATMAP_CELLS,
    LOITERING_EVENTS,
    PERSON_OBSERVATIONS,
    PERSON_OBSERVATIONS_REJECTED,
    PERSON_TRACKS,
    ZONE_OCCUPANCY,
    ZONE_TRANSITIONS,
    ZONE_VISITS,
)

EXIT_LEFT_ZONE = "left_zone"
EXIT_TRACK_LOST = "track_lost"
DIRECTION_IN = "in"
DIRECTION_OUT = "out"
DEFAULT_EXIT_DEBOUNCE_SECONDS = 1.0
#: a tracker loses a person standing still for about a second, or hands them to a new track
#: (thresholds.zone_presence_gap_seconds; chosen on tuning seeds 8001-8005, 8201-8205)
DEFAULT_PRESENCE_GAP_SECONDS = 1.5
#: how far (in box heights, foot to foot) the next visit may begin from where a presence's visit ended
PRESENCE_MAX_JUMP = 0.6
DEFAULT_HEATMAP_COLS = 64
DEFAULT_HEATMAP_ROWS = 36
HEATMAP_MAX_GAP_SECONDS = 1.0  # an observation stands for the time to the track's next one, at most this
PATH_CELL = 0.02  # a track's path keeps a point when the person moved to another cell of this size (relative)
MINUTE_US = 60_000_000
_KEY = ["camera", "track_id"]
_REQUIRED = [c for c in PERSON_OBSERVATIONS if c not in ("identity", "score")]
#: where a visit began and ended (foot point and box height, frame px): what presences join on (VisitEnds)
_VISIT_ENDS = ["enter_x", "enter_y", "enter_h", "exit_x", "exit_y", "exit_h"]


def _us(seconds: float) -> int:
    return int(round(seconds * 1_000_000))


def _utc(column: str) -> pl.Expr:
    return pl.from_epoch(pl.col(column), time_unit="us").dt.replace_time_zone("UTC").alias(column)


def split_valid_observations(observations: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(usable rows sorted by camera, track and time; rejected rows with a `reason`): one bad row
    never stops a camera-day.

    Rejected: a missing required value, a non-finite or empty box, a non-positive frame size, a
    second observation of one track at the same timestamp.
    """
    obs = observations.select([pl.col(c).cast(t) for c, t in PERSON_OBSERVATIONS.items()]).sort(
        ["camera", "track_id", "ts"], maintain_order=True)
    box = ["x1", "y1", "x2", "y2"]
    repeated = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in ("camera", "track_id", "ts")])
    reason = (
        pl.when(pl.any_horizontal(pl.col(_REQUIRED).is_null())).then(pl.lit("missing value"))
        .when(~pl.all_horizontal([pl.col(c).is_finite() for c in box])).then(pl.lit("non-finite box"))
        .when((pl.col("frame_width") <= 0) | (pl.col("frame_height") <= 0)).then(pl.lit("bad frame size"))
        .when((pl.col("x2") <= pl.col("x1")) | (pl.col("y2") <= pl.col("y1"))).then(pl.lit("empty box"))
        .when(repeated.fill_null(False))
        .then(pl.lit("duplicate observation of one track at one timestamp"))
        .otherwise(None)
        .alias("reason")
    )
    obs = obs.with_columns(reason)
    rejected = obs.filter(pl.col("reason").is_not_null()).select(list(PERSON_OBSERVATIONS_REJECTED))
    valid = obs if rejected.is_empty() else obs.filter(pl.col("reason").is_null())  # usually nothing to drop
    return valid.drop("reason"), rejected


def _prepare(observations: pl.DataFrame) -> pl.DataFrame:
    """Valid observations sorted by camera, track, time, with the bottom-centre point (relative) and
    epoch microseconds `t`; `row` numbers rows so consecutive observations of a track differ by 1."""
    return _prepare_valid(split_valid_observations(observations)[0])


def _prepare_valid(obs: pl.DataFrame) -> pl.DataFrame:
    """`obs` as split_valid_observations returns it (sorted); adds where each track starts and ends."""
    new_track = ((pl.col("camera") != pl.col("camera").shift(1))
                 | (pl.col("track_id") != pl.col("track_id").shift(1))).fill_null(True)
    return (
        obs.with_columns(new_track=new_track)
        .with_columns(
            last_of_track=pl.col("new_track").shift(-1).fill_null(True),
            t=pl.col("ts").dt.epoch("us"),
            px=(pl.col("x1") + pl.col("x2")) / 2 / pl.col("frame_width"),
            py=pl.col("y2") / pl.col("frame_height"),
        )
        .with_row_index("row")
    )


def _track_facts(obs: pl.DataFrame) -> pl.DataFrame:
    return obs.group_by(_KEY).agg(
        start_t=pl.col("t").min(),
        end_t=pl.col("t").max(),
        identity=pl.col("identity").drop_nulls().first(),
    )


def _visits_in_zone(inside: pl.DataFrame, zone: Zone, debounce_us: int) -> pl.DataFrame:
    """Visits from the observations inside one zone (sorted by track, time).

    Runs of consecutive observations inside (an unobserved stretch longer than the debounce also
    ends a run) are grouped while the gap between runs is within the debounce; a group becomes a
    visit from its first run of at least `inertia` observations to its last observation."""
    if inside.is_empty():
        return pl.DataFrame(schema={"track_id": pl.Utf8, "enter_t": pl.Int64, "exit_t": pl.Int64,
                                    **{c: pl.Float64 for c in _VISIT_ENDS}})
    same_track = pl.col("track_id") == pl.col("track_id").shift(1)
    consecutive = ((pl.col("row") == pl.col("row").shift(1) + 1)
                   & (pl.col("t") - pl.col("t").shift(1) <= debounce_us))
    runs = (
        inside.with_columns(run=(~(same_track & consecutive)).fill_null(True).cum_sum())
        .group_by("run", maintain_order=True)
        .agg(track_id=pl.col("track_id").first(), start_t=pl.col("t").first(),
             end_t=pl.col("t").last(), frames=pl.len(),
             first_x=pl.col("fx").first(), first_y=pl.col("fy").first(), first_h=pl.col("fh").first(),
             last_x=pl.col("fx").last(), last_y=pl.col("fy").last(), last_h=pl.col("fh").last())
    )
    gap = pl.col("start_t") - pl.col("end_t").shift(1)
    return (
        runs.with_columns(group=(~(same_track & (gap <= debounce_us))).fill_null(True).cum_sum(),
                          qualifies=pl.col("frames") >= zone.inertia)
        .group_by("group", maintain_order=True)
        .agg(track_id=pl.col("track_id").first(),
             enter_t=pl.col("start_t").filter(pl.col("qualifies")).first(),
             exit_t=pl.col("end_t").last(),
             **{f"enter_{c}": pl.col(f"first_{c}").filter(pl.col("qualifies")).first() for c in "xyh"},
             **{f"exit_{c}": pl.col(f"last_{c}").last() for c in "xyh"})
        .drop_nulls("enter_t")
        .select("track_id", "enter_t", "exit_t", *_VISIT_ENDS)
    )


def zone_visits(
    observations: pl.DataFrame, zones: Iterable[Zone],
    exit_debounce_seconds: float = DEFAULT_EXIT_DEBOUNCE_SECONDS,
) -> pl.DataFrame:
    """ZONE_VISITS rows: one per continuous presence of one track in one zone (module docstring)."""
    return _zone_visits(_prepare(observations), list(zones), _us(exit_debounce_seconds)).select(list(ZONE_VISITS))


def _zone_visits(obs: pl.DataFrame, zones: list[Zone], debounce_us: int) -> pl.DataFrame:
    """ZONE_VISITS rows plus where each visit began and ended (_VISIT_ENDS), for presences."""
    parts = []
    spans = obs.group_by("camera").agg(offset=pl.col("row").min(), length=pl.len())
    by_camera = {camera: obs.slice(offset, length) for camera, offset, length in spans.iter_rows()}  # no copies
    for zone in zones:
        camera_obs = by_camera.get(zone.camera)
        if camera_obs is None:
            continue
        mask = points_in_polygon(camera_obs["px"].to_numpy(), camera_obs["py"].to_numpy(), zone.polygon)
        inside = camera_obs.select("track_id", "t", "row", fx=(pl.col("x1") + pl.col("x2")) / 2, fy=pl.col("y2"),
                                   fh=pl.col("y2") - pl.col("y1")).filter(pl.Series(mask))
        parts.append(_visits_in_zone(inside, zone, debounce_us).with_columns(
            camera=pl.lit(zone.camera), zone=pl.lit(zone.name), kind=pl.lit(zone.kind),
            category=pl.lit(zone.category, dtype=pl.Utf8)))
    if not parts:
        return pl.DataFrame(schema={**ZONE_VISITS, **{c: pl.Float64 for c in _VISIT_ENDS}})
    tracks = _track_facts(obs)
    visits = pl.concat(parts, how="diagonal_relaxed").join(tracks, on=_KEY, how="left")
    return (
        visits.with_columns(
            dwell_s=(pl.col("exit_t") - pl.col("enter_t")) / 1_000_000,
            exit_reason=pl.when(pl.col("end_t") - pl.col("exit_t") <= debounce_us)
            .then(pl.lit(EXIT_TRACK_LOST)).otherwise(pl.lit(EXIT_LEFT_ZONE)),
        )
        .rename({"enter_t": "enter_ts", "exit_t": "exit_ts"})
        .with_columns(_utc("enter_ts"), _utc("exit_ts"))
        .select([pl.col(c).cast(t) for c, t in ZONE_VISITS.items()] + _VISIT_ENDS)
        .sort(["camera", "zone", "track_id", "enter_ts"])
    )


class VisitEnds(NamedTuple):
    """Where and when one zone visit began and ended: foot point (x, y) and box height h in frame px,
    times in microseconds; `visit` numbers it."""

    visit: int
    enter_t: int
    exit_t: int
    enter_x: float
    enter_y: float
    enter_h: float
    exit_x: float
    exit_y: float
    exit_h: float


def continued_visits(ends: Iterable[VisitEnds], max_gap_us: int, max_jump: float = PRESENCE_MAX_JUMP) -> dict[int, int]:
    """{visit: the visit it continues} among one zone's visits: one that ended at most `max_gap_us`
    before it began, its entry within `max_jump` box heights (the larger box: one cut by someone in
    front understates the person) of that one's exit. Nearest pairs first; each visit continues at
    most one and is continued by at most one."""
    ends = list(ends)
    by_exit = sorted(ends, key=lambda e: e.exit_t)
    exits = [e.exit_t for e in by_exit]
    pairs = []
    for later in ends:
        lo, hi = bisect.bisect_left(exits, later.enter_t - max_gap_us), bisect.bisect_right(exits, later.enter_t)
        for earlier in by_exit[lo:hi]:
            height = max(earlier.exit_h, later.enter_h)
            if earlier.visit == later.visit or height <= 0:
                continue
            jump = math.hypot(later.enter_x - earlier.exit_x, later.enter_y - earlier.exit_y) / height
            if jump <= max_jump:
                pairs.append((jump, later.enter_t - earlier.exit_t, later.visit, earlier.visit))
    predecessor: dict[int, int] = {}
    continued: set[int] = set()
    for _, _, later, earlier in sorted(pairs):
        if later not in predecessor and earlier not in continued:
            predecessor[later] = earlier
            continued.add(earlier)
    return predecessor


def zone_presences(visits: pl.DataFrame, presence_gap_seconds: float, max_jump: float = PRESENCE_MAX_JUMP) -> pl.DataFrame:
    """One row per presence (module docstring): the first visit's columns with exit_ts the last
    visit's exit and dwell_s from its entry, identity the first one known along it. `visits` as
    _zone_visits returns them (with where each began and ended)."""
    if visits.is_empty() or presence_gap_seconds <= 0:
        return visits
    visits = visits.sort(["camera", "zone", "enter_ts", "track_id"]).with_row_index("visit")
    roots = {}
    for _, part in visits.group_by(["camera", "zone"]):
        ends = part.select("visit", pl.col("enter_ts").dt.epoch("us"), pl.col("exit_ts").dt.epoch("us"), *_VISIT_ENDS)
        roots.update(chain_roots(continued_visits((VisitEnds(*row) for row in ends.iter_rows()),
                                                  _us(presence_gap_seconds), max_jump)))
    chained = visits.with_columns(presence=pl.col("visit").replace_strict(roots, default=pl.col("visit"), return_dtype=pl.UInt32))
    return (
        chained.group_by("presence")
        .agg(pl.all().sort_by("enter_ts").first(), last_exit=pl.col("exit_ts").max(),
             known=pl.col("identity").sort_by("enter_ts").drop_nulls().first())
        .with_columns(exit_ts=pl.col("last_exit"), identity=pl.coalesce("identity", "known"))
        .with_columns(dwell_s=(pl.col("exit_ts") - pl.col("enter_ts")).dt.total_microseconds() / 1_000_000)
        .drop("presence", "visit", "last_exit", "known")
        .sort(["camera", "zone", "track_id", "enter_ts"])
    )


def loitering_events(visits: pl.DataFrame, zones: Iterable[Zone], presence_gap_seconds: float = 0.0) -> pl.DataFrame:
    """LOITERING_EVENTS rows: presences in zones with loitering_time > 0 that lasted it.

    presence_gap_seconds > 0 joins visits into presences (zone_presences; the visits must carry
    where they began and ended, as analyse_observations has them); 0: each visit is its own presence.
    """
    thresholds = pl.DataFrame(
        [(z.camera, z.name, _us(z.loitering_time)) for z in zones if z.loitering_time > 0],
        schema={"camera": pl.Utf8, "zone": pl.Utf8, "loitering_us": pl.Int64}, orient="row",
    )
    presences = zone_presences(visits, presence_gap_seconds)
    dwell_us = pl.col("exit_ts").dt.epoch("us") - pl.col("enter_ts").dt.epoch("us")
    return (
        presences.join(thresholds, on=["camera", "zone"])
        .filter(dwell_us >= pl.col("loitering_us"))
        .with_columns(
            start_ts=pl.col("enter_ts"),
            alert_ts=pl.col("enter_ts") + pl.duration(microseconds=pl.col("loitering_us")),
            loitering_time_s=pl.col("loitering_us") / 1_000_000,
            dwell_s=dwell_us / 1_000_000,
        )
        .select([pl.col(c).cast(t) for c, t in LOITERING_EVENTS.items()])
        .sort(["camera", "zone", "start_ts", "track_id"])
    )


def footfall(
    visits: pl.DataFrame, tracks: pl.DataFrame,
    exit_debounce_seconds: float = DEFAULT_EXIT_DEBOUNCE_SECONDS,
) -> pl.DataFrame:
    """FOOTFALL rows from entrance-zone visits and the tracks' first observation (module docstring).

    `tracks` needs camera, track_id and start_ts (PERSON_TRACKS has them).
    """
    born_in_zone = (
        pl.col("enter_ts").dt.epoch("us") - pl.col("start_ts").dt.epoch("us") <= _us(exit_debounce_seconds)
    )
    direction = (
        pl.when(born_in_zone & (pl.col("exit_reason") == EXIT_LEFT_ZONE)).then(pl.lit(DIRECTION_IN))
        .when(~born_in_zone & (pl.col("exit_reason") == EXIT_TRACK_LOST)).then(pl.lit(DIRECTION_OUT))
        .otherwise(None)
    )
    return (
        visits.filter(pl.col("kind") == "entrance")
        .join(tracks.select(_KEY + ["start_ts"]), on=_KEY, how="left")
        .with_columns(direction=direction, ts=pl.col("exit_ts"))
        .drop_nulls("direction")
        .select([pl.col(c).cast(t) for c, t in FOOTFALL.items()])
        .sort(["camera", "ts", "track_id"])
    )


def zone_occupancy(visits: pl.DataFrame) -> pl.DataFrame:
    """ZONE_OCCUPANCY rows: per zone and minute, time-averaged and peak people, and entries.

    mean_people = person-seconds in the zone during the minute / 60; max_people = the most visits
    open at one instant of the minute (a visit is open from enter_ts to exit_ts, both included).
    """
    if visits.is_empty():
        return pl.DataFrame(schema=ZONE_OCCUPANCY)
    spans = visits.select(
        "camera", "zone", enter=pl.col("enter_ts").dt.epoch("us"), exit=pl.col("exit_ts").dt.epoch("us")
    ).with_columns(first_minute=pl.col("enter") // MINUTE_US * MINUTE_US)
    minutes = (
        spans.with_columns(minute=pl.int_ranges(
            pl.col("first_minute"), pl.col("exit") // MINUTE_US * MINUTE_US + MINUTE_US, MINUTE_US))
        .explode("minute", empty_as_null=False)  # a span covers at least one minute
        .with_columns(overlap=(pl.min_horizontal(pl.col("exit"), pl.col("minute") + MINUTE_US)
                               - pl.max_horizontal(pl.col("enter"), pl.col("minute"))).clip(lower_bound=0))
        .group_by("camera", "zone", "minute")
        .agg(mean_people=pl.col("overlap").sum() / MINUTE_US,
             carried=(pl.col("minute") > pl.col("first_minute")).sum(),
             entries=(pl.col("minute") == pl.col("first_minute")).sum())
    )
    events = (
        pl.concat([spans.select("camera", "zone", t=pl.col("enter"), step=pl.lit(1)),
                   spans.select("camera", "zone", t=pl.col("exit"), step=pl.lit(-1))])
        .sort(["camera", "zone", "t", "step"], descending=[False, False, False, True])
        .with_columns(open=pl.col("step").cum_sum().over("camera", "zone"))
        .filter(pl.col("step") == 1)
        .group_by("camera", "zone", minute=pl.col("t") // MINUTE_US * MINUTE_US)
        .agg(peak=pl.col("open").max())
    )
    return (
        minutes.join(events, on=["camera", "zone", "minute"], how="left")
        .with_columns(max_people=pl.max_horizontal(pl.col("carried"), pl.col("peak").fill_null(0)))
        .with_columns(_utc("minute"))
        .select([pl.col(c).cast(t) for c, t in ZONE_OCCUPANCY.items()])
        .sort(["camera", "zone", "minute"])
    )


def zone_transitions(visits: pl.DataFrame) -> pl.DataFrame:
    """ZONE_TRANSITIONS rows: counts of a track's next zone (by entry time) after each zone."""
    return (
        visits.sort(["camera", "track_id", "enter_ts", "zone"])
        .with_columns(to_zone=pl.col("zone").shift(-1).over(_KEY))
        .filter(pl.col("to_zone").is_not_null() & (pl.col("to_zone") != pl.col("zone")))
        .group_by("camera", from_zone=pl.col("zone"), to_zone=pl.col("to_zone"))
        .agg(transitions=pl.len(), tracks=pl.col("track_id").n_unique())
        .select([pl.col(c).cast(t) for c, t in ZONE_TRANSITIONS.items()])
        .sort(["camera", "from_zone", "to_zone"])
    )


def person_tracks(observations: pl.DataFrame, path_cell: float = PATH_CELL) -> pl.DataFrame:
    """PERSON_TRACKS rows: one per track, with its bottom-centre path sampled on movement."""
    return _person_tracks(_prepare(observations), path_cell)


def _person_tracks(obs: pl.DataFrame, path_cell: float) -> pl.DataFrame:
    cell = (pl.col("px") / path_cell).floor() * 1_000_003 + (pl.col("py") / path_cell).floor()
    keep = pl.col("new_track") | pl.col("last_of_track") | (cell != cell.shift(1))
    return (
        obs.with_columns(keep=keep)
        .group_by(_KEY)
        .agg(
            identity=pl.col("identity").drop_nulls().first(),
            start_ts=pl.col("ts").min(),
            end_ts=pl.col("ts").max(),
            observations=pl.len(),
            mean_score=pl.col("score").mean(),
            median_box_width=(pl.col("x2") - pl.col("x1")).median(),
            median_box_height=(pl.col("y2") - pl.col("y1")).median(),
            path=pl.struct(pl.col("ts"), x=pl.col("px"), y=pl.col("py")).filter(pl.col("keep")),
        )
        .with_columns(duration_s=(pl.col("end_ts") - pl.col("start_ts")).dt.total_microseconds() / 1_000_000)
        .select([pl.col(c).cast(t) for c, t in PERSON_TRACKS.items()])
        .sort(["camera", "start_ts", "track_id"])
    )


def heatmap_cells(
    observations: pl.DataFrame, cols: int = DEFAULT_HEATMAP_COLS, rows: int = DEFAULT_HEATMAP_ROWS,
) -> pl.DataFrame:
    """HEATMAP_CELLS rows: bottom-centre observations and person-seconds per grid cell per camera."""
    return _heatmap_cells(_prepare(observations), cols, rows)


def _heatmap_cells(obs: pl.DataFrame, cols: int, rows: int) -> pl.DataFrame:
    step = (pl.when(pl.col("last_of_track")).then(0).otherwise(pl.col("t").shift(-1) - pl.col("t"))
            .clip(upper_bound=_us(HEATMAP_MAX_GAP_SECONDS)))
    return (
        obs.with_columns(
            col=(pl.col("px") * cols).floor().clip(0, cols - 1).cast(pl.Int32),
            row=(pl.col("py") * rows).floor().clip(0, rows - 1).cast(pl.Int32),
            step=step,
        )
        .group_by("camera", "col", "row")
        .agg(samples=pl.len(), person_seconds=pl.col("step").sum() / 1_000_000)
        .with_columns(grid_cols=pl.lit(cols), grid_rows=pl.lit(rows))
        .select([pl.col(c).cast(t) for c, t in HEATMAP_CELLS.items()])
        .sort(["camera", "row", "col"])
    )


def heatmap_grid(
    cells: pl.DataFrame, camera: str, value: str = "person_seconds",
    cols: int = DEFAULT_HEATMAP_COLS, rows: int = DEFAULT_HEATMAP_ROWS,
) -> np.ndarray:
    """One camera's cells as a (rows, cols) array (row 0 at the top of the frame); the grid size
    comes from the cells, or from `cols`/`rows` when the camera saw nobody (all zeros)."""
    mine = cells.filter(pl.col("camera") == camera)
    if mine.is_empty():
        return np.zeros((rows, cols))
    grid = np.zeros((mine["grid_rows"][0], mine["grid_cols"][0]))
    grid[mine["row"].to_numpy(), mine["col"].to_numpy()] = mine[value].to_numpy()
    return grid


@dataclass(frozen=True)
class ZoneAnalytics:
    """Everything one camera-day of observations yields; each frame has its schema in schemas.py."""

    rejected: pl.DataFrame
    tracks: pl.DataFrame
    visits: pl.DataFrame
    loitering: pl.DataFrame
    footfall: pl.DataFrame
    occupancy: pl.DataFrame
    transitions: pl.DataFrame
    heatmap: pl.DataFrame


def analyse_observations(
    observations: pl.DataFrame, zones: Iterable[Zone],
    exit_debounce_seconds: float = DEFAULT_EXIT_DEBOUNCE_SECONDS,
    heatmap_cols: int = DEFAULT_HEATMAP_COLS, heatmap_rows: int = DEFAULT_HEATMAP_ROWS,
    presence_gap_seconds: float = DEFAULT_PRESENCE_GAP_SECONDS,
) -> ZoneAnalytics:
    """All datasets from one table of observations (typically one camera-day), preparing it once;
    loitering counts presences that bridge breaks of at most `presence_gap_seconds`."""
    zones = list(zones)
    valid, rejected = split_valid_observations(observations)
    obs = _prepare_valid(valid)
    tracks = _person_tracks(obs, PATH_CELL)
    with_ends = _zone_visits(obs, zones, _us(exit_debounce_seconds))
    visits = with_ends.select(list(ZONE_VISITS))
    return ZoneAnalytics(
        rejected=rejected,
        tracks=tracks,
        visits=visits,
        loitering=loitering_events(with_ends, zones, presence_gap_seconds),
        footfall=footfall(visits, tracks, exit_debounce_seconds),
        occupancy=zone_occupancy(visits),
        transitions=zone_transitions(visits),
        heatmap=_heatmap_cells(obs, heatmap_cols, heatmap_rows),
    )
