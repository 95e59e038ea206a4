"""Track repairs after ByteTrack (people/relink.py): split tracks re-linked, gaps filled, duplicates dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from watershop_dagster.people import PERSON_OBSERVATIONS
from watershop_dagster.people.detector import YuvSmall
from watershop_dagster.people.relink import (
    RelinkSettings,
    TrackEnd,
    apply_links,
    duplicate_tracks,
    link_cost,
    relink_tracks,
    track_ends,
)
from watershop_dagster.people.tracking import box_colour

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
STEP = 0.1


def _rows(track: str, t0: float, t1: float, x0: float, vx: float, y2: float = 600.0, height: float = 300.0) -> list[dict]:
    out = []
    for t in np.arange(t0, t1 + 1e-9, STEP):
        x = x0 + vx * (t - t0)
        out.append({"camera": "c", "track_id": track, "ts": T0 + timedelta(seconds=round(float(t), 6)),
                    "x1": x - 50, "y1": y2 - height, "x2": x + 50, "y2": y2, "frame_width": 1280, "frame_height": 720,
                    "identity": None, "score": 0.9})
    return out


def _frame(*tracks: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([r for t in tracks for r in t], schema=PERSON_OBSERVATIONS)


def _end(track, first_t, last_t, first_foot, last_foot, velocity=(0.0, 0.0), height=300.0, first_colour=None, last_colour=None):
    box = lambda foot: (foot[0] - 50, foot[1] - height, foot[0] + 50, foot[1])  # noqa: E731
    return TrackEnd(track, first_t, last_t, box(first_foot), box(last_foot), velocity, first_colour, last_colour)


def test_a_track_starting_where_a_walker_was_heading_continues_it():
    a = _end("a", 0.0, 5.0, (100, 600), (400, 600), velocity=(60.0, 0.0))
    b = _end("b", 6.5, 9.0, (490, 600), (600, 600))
    assert link_cost(a, b) is not None
    assert relink_tracks([a, b]) == {"b": "a"}


def test_no_link_when_too_far_too_late_too_different_or_before_the_end():
    a = _end("a", 0.0, 5.0, (100, 600), (400, 600), velocity=(60.0, 0.0))
    assert link_cost(a, _end("b", 6.0, 9.0, (700, 600), (700, 600))) is None  # a whole body width and more away
    assert link_cost(a, _end("b", 9.0, 12.0, (400, 600), (400, 600))) is None  # after the gap
    assert link_cost(a, _end("b", 4.0, 9.0, (400, 600), (400, 600))) is None  # started before a ended
    assert link_cost(a, _end("b", 6.0, 9.0, (400, 600), (400, 600), height=150.0)) is None  # half the size
    red, blue = (100.0, 180.0, 110.0, 130.0), (170.0, 100.0, 110.0, 130.0)
    a_red = _end("a", 0.0, 5.0, (100, 600), (400, 600), last_colour=red)
    assert link_cost(a_red, _end("b", 6.0, 9.0, (400, 600), (400, 600), first_colour=blue)) is None
    assert link_cost(a_red, _end("b", 6.0, 9.0, (400, 600), (400, 600), first_colour=red)) is not None


def test_each_track_links_once_best_first_and_chains_resolve_to_the_first():
    a = _end("a", 0.0, 5.0, (400, 600), (400, 600))
    near = _end("near", 5.5, 8.0, (410, 600), (410, 600))
    far = _end("far", 5.5, 8.0, (520, 600), (520, 600))
    later = _end("later", 9.0, 12.0, (415, 600), (415, 600))
    links = relink_tracks([a, near, far, later])
    assert links == {"near": "a", "later": "a"}


def test_track_ends_measure_the_end_velocity():
    obs = _frame(_rows("a", 0.0, 4.0, 100.0, 50.0))
    (end,) = track_ends(obs)
    assert end.first_t < end.last_t and end.velocity[0] == np.float64(end.velocity[0])
    assert abs(end.velocity[0] - 50.0) < 1e-6 and abs(end.velocity[1]) < 1e-9
    assert end.first_box[0] == 50.0 and end.first_colour is None


def test_apply_links_renames_and_fills_the_gap_with_interpolated_boxes():
    obs = _frame(_rows("a", 0.0, 2.0, 100.0, 50.0), _rows("b", 3.0, 4.0, 150.0, 50.0))
    out = apply_links(obs, {"b": "a"}, STEP, max_fill_s=2.5)
    assert out.schema == obs.schema and set(out["track_id"]) == {"a"}
    seconds = ((out["ts"] - T0).dt.total_microseconds() / 1e6).to_numpy()
    assert np.allclose(np.diff(seconds), STEP)  # no hole left
    filled = out.filter(pl.col("score") == 0.0)
    assert filled.height == 9
    # halfway through the gap (t = 2.5 s) the box is halfway between the ends (x centre 200 -> 150)
    mid = filled.filter(pl.col("ts") == T0 + timedelta(seconds=2.5))
    assert abs((mid["x1"][0] + mid["x2"][0]) / 2 - 175.0) < 1e-6
    # a gap longer than max_fill_s stays a gap
    assert apply_links(obs, {"b": "a"}, STEP, max_fill_s=0.5).height == obs.height


def test_a_box_mostly_inside_a_longer_concurrent_track_is_a_duplicate():
    person = _rows("person", 0.0, 5.0, 100.0, 50.0)
    piece = [{**r, "track_id": "piece", "x1": r["x1"] + 20, "x2": r["x2"] - 20, "y1": r["y1"] + 50} for r in person[10:30]]
    passer = _rows("passer", 1.0, 4.0, 400.0, -60.0)  # crosses the person for a moment only
    obs = _frame(person, piece, passer)
    assert duplicate_tracks(obs) == {"piece"}
    assert duplicate_tracks(obs, RelinkSettings(duplicate_share=1.01)) == set()


def test_box_colour_reads_shirt_and_trousers_on_foreground_only():
    y = np.full((20, 10), 100.0, np.float32)
    u = np.full((20, 10), 128.0, np.float32)
    v = np.full((20, 10), 128.0, np.float32)
    u[:10, 2:8], v[10:, 2:8] = 90.0, 170.0  # a blue-ish shirt, red-ish trousers; grey floor around
    mask = np.zeros((20, 10), np.uint8)
    mask[:, 2:8] = 1
    planes = YuvSmall(y, u, v, 20, 40)
    assert np.allclose(box_colour(planes, (0, 0, 10, 20), mask), [90.0, 128.0, 128.0, 170.0])
    assert box_colour(planes, (0, 0, 10, 20), np.zeros_like(mask)) is None
