"""Zone analytics on hand-built observation tables: inertia, debounce, loss, loitering, footfall..."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from watershop_dagster.zones import (
    FOOTFALL,
    HEATMAP_CELLS,
    LOITERING_EVENTS,
    PERSON_OBSERVATIONS,
    PERSON_TRACKS,
    ZONE_OCCUPANCY,
    ZONE_TRANSITIONS,
    ZONE_VISITS,
    Zone,
    analyse_observations,
    footfall,
    heatmap_cells,
    heatmap_grid,
    loitering_events,
    parse_polygon,
    person_tracks,
    render_heatmap_png,
    split_valid_observations,
    zone_occupancy,
    zone_transitions,
    zone_visits,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
W, H = 1280, 720
CAM = "aisle-cam"
# Relative spots (bottom-centre points) inside / outside the test zones.
SHELF_PT, AISLE_PT, ENTRANCE_PT, NOWHERE_PT = (0.3, 0.3), (0.7, 0.5), (0.1, 0.9), (0.45, 0.1)


def _zone(name, rect, kind="aisle", inertia=3, loitering_time=0.0, category=None, camera=CAM) -> Zone:
    x0, y0, x1, y1 = rect
    return Zone(camera, name, kind, category, inertia, loitering_time,
                np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float))


SHELF = _zone("shelf", (0.2, 0.2, 0.4, 0.4), kind="shelf", category="snacks", loitering_time=5)
AISLE = _zone("aisle", (0.5, 0.2, 0.9, 0.9))
ENTRANCE = _zone("entrance", (0.0, 0.8, 0.2, 1.0), kind="entrance")
ZONES = [SHELF, AISLE, ENTRANCE]


def track(segments, track_id="t1", fps=10, start_s=0.0, camera=CAM, identity=None, width=W, height=H):
    """Observations of one track: segments of (seconds, (x, y)) at `fps`; (seconds, None) = unobserved."""
    rows, t = [], start_s
    for seconds, point in segments:
        frames = int(round(seconds * fps))
        for i in range(frames):
            if point is not None:
                x, y = point
                bw, bh = 0.05 * width, 0.3 * height
                rows.append({
                    "camera": camera, "track_id": track_id,
                    "ts": T0 + timedelta(microseconds=round((t + i / fps) * 1_000_000)),
                    "x1": x * width - bw / 2, "y1": y * height - bh, "x2": x * width + bw / 2, "y2": y * height,
                    "frame_width": width, "frame_height": height, "identity": identity, "score": 0.9,
                })
        t += frames / fps
    return rows


def frame(*tracks) -> pl.DataFrame:
    return pl.DataFrame([row for rows in tracks for row in rows], schema=PERSON_OBSERVATIONS)


def at(seconds: float) -> datetime:
    return T0 + timedelta(microseconds=round(seconds * 1_000_000))


def test_entry_needs_inertia_consecutive_frames_and_starts_at_the_first():
    two = frame(track([(1, NOWHERE_PT), (0.2, SHELF_PT), (1, NOWHERE_PT)], "short"))
    assert zone_visits(two, [SHELF]).is_empty()
    three = frame(track([(1, NOWHERE_PT), (0.3, SHELF_PT), (2, NOWHERE_PT)], "enough"))
    visits = zone_visits(three, [SHELF])
    assert visits.height == 1
    assert visits["enter_ts"][0] == at(1.0) and visits["exit_ts"][0] == at(1.2)
    # Flicker: two frames in, one out, two in - never three consecutive frames.
    flicker = frame(track([(0.2, SHELF_PT), (0.1, NOWHERE_PT), (0.2, SHELF_PT), (2, NOWHERE_PT)], "flicker"))
    assert zone_visits(flicker, [SHELF]).is_empty()


def test_short_dropout_does_not_split_a_visit_but_a_long_absence_does():
    dropout = frame(track([(2, SHELF_PT), (0.5, NOWHERE_PT), (2, SHELF_PT), (2, NOWHERE_PT)]))
    visits = zone_visits(dropout, [SHELF], exit_debounce_seconds=1.0)
    assert visits.height == 1 and visits["dwell_s"][0] == pytest.approx(4.4)
    unobserved = frame(track([(2, SHELF_PT), (0.5, None), (2, SHELF_PT), (2, NOWHERE_PT)]))
    assert zone_visits(unobserved, [SHELF]).height == 1
    absence = frame(track([(2, SHELF_PT), (3, NOWHERE_PT), (2, SHELF_PT), (2, NOWHERE_PT)]))
    visits = zone_visits(absence, [SHELF], exit_debounce_seconds=1.0)
    assert visits.height == 2
    assert visits["exit_reason"].to_list() == ["left_zone", "left_zone"]
    assert visits["enter_ts"].to_list() == [at(0), at(5)]
    assert visits["exit_ts"][0] == at(1.9)
    # The debounce is in seconds, not frames: the same 3 s absence at 30 fps splits the same way.
    assert zone_visits(frame(track([(2, SHELF_PT), (3, NOWHERE_PT), (2, SHELF_PT)], fps=30)), [SHELF]).height == 2
    assert zone_visits(absence, [SHELF], exit_debounce_seconds=4.0).height == 1


def test_track_lost_inside_ends_the_visit_as_track_lost():
    lost = frame(track([(1, NOWHERE_PT), (3, SHELF_PT)]))
    visits = zone_visits(lost, [SHELF])
    assert visits["exit_reason"].to_list() == ["track_lost"]
    assert visits["exit_ts"][0] == at(3.9)
    # Lost half a second after stepping out: the exit was never confirmed, so still track_lost.
    assert zone_visits(frame(track([(3, SHELF_PT), (0.5, NOWHERE_PT)])), [SHELF])["exit_reason"][0] == "track_lost"
    assert zone_visits(frame(track([(3, SHELF_PT), (2, NOWHERE_PT)])), [SHELF])["exit_reason"][0] == "left_zone"


def test_visit_columns_carry_zone_kind_category_and_track_identity():
    obs = frame(track([(2, SHELF_PT)], identity=None) + track([(1, SHELF_PT)], start_s=2, identity="cust-7"))
    visits = zone_visits(obs, ZONES)
    assert visits.schema == pl.Schema(ZONE_VISITS)
    row = visits.row(0, named=True)
    assert (row["camera"], row["zone"], row["kind"], row["category"], row["identity"]) == (
        CAM, "shelf", "shelf", "snacks", "cust-7")


def test_loitering_exactly_at_the_threshold_counts_and_just_below_does_not():
    exactly = frame(track([(5.1, SHELF_PT), (3, NOWHERE_PT)], "a"))  # frames 0..5.0 s: dwell 5.0 s
    below = frame(track([(5.0, SHELF_PT), (3, NOWHERE_PT)], "b"))  # frames 0..4.9 s
    events = loitering_events(zone_visits(pl.concat([exactly, below]), ZONES), ZONES)
    assert events.schema == pl.Schema(LOITERING_EVENTS)
    assert events["track_id"].to_list() == ["a"]
    event = events.row(0, named=True)
    assert event["start_ts"] == at(0) and event["alert_ts"] == at(5.0) and event["dwell_s"] == 5.0
    assert event["exit_ts"] == at(5.0) and event["loitering_time_s"] == 5.0
    # Zones without loitering_time never raise one, however long the stay.
    assert loitering_events(zone_visits(frame(track([(60, AISLE_PT)])), ZONES), ZONES).is_empty()


def test_a_1s_break_in_a_loiterers_track_still_gives_one_loitering_event_from_the_first_entry():
    # Lost for a second (> the 1 s exit debounce): two zone visits of 3 s and 4 s, neither 5 s long.
    rows = track([(3, SHELF_PT), (1, None), (4, SHELF_PT), (2, NOWHERE_PT)], "a")
    result = analyse_observations(frame(rows), ZONES)
    assert result.visits.filter(pl.col("zone") == "shelf")["enter_ts"].to_list() == [at(0), at(4.0)]
    assert result.loitering.select("track_id", "start_ts", "alert_ts", "exit_ts", "dwell_s").rows() == [
        ("a", at(0), at(5.0), at(7.9), pytest.approx(7.9))]
    # Each visit alone (no presence gap) is too short to loiter.
    assert analyse_observations(frame(rows), ZONES, presence_gap_seconds=0).loitering.is_empty()


def test_another_track_taking_over_at_the_same_spot_continues_the_presence():
    shifted = (SHELF_PT[0] + 0.01, SHELF_PT[1])  # the new track's box sits a little aside
    obs = frame(track([(3, SHELF_PT)], "a", identity=None),
                track([(4, shifted), (2, NOWHERE_PT)], "b", start_s=3.5, identity="cust-7"))
    result = analyse_observations(obs, ZONES)
    assert result.visits.filter(pl.col("zone") == "shelf").height == 2  # visits stay per track
    event = result.loitering.row(0, named=True)
    assert result.loitering.height == 1
    assert (event["track_id"], event["start_ts"], event["alert_ts"], event["exit_ts"]) == ("a", at(0), at(5.0), at(7.4))
    assert event["identity"] == "cust-7"  # the first identity known along the presence
    from watershop_dagster.zones import checks
    assert checks.loitering_without_visit(result.loitering, result.visits).is_empty()


def test_two_people_at_one_spot_minutes_apart_or_elsewhere_in_the_zone_are_not_joined():
    apart = frame(track([(4, SHELF_PT)], "a"), track([(4, SHELF_PT), (2, NOWHERE_PT)], "b", start_s=124))
    assert analyse_observations(apart, ZONES).loitering.is_empty()
    # Within the gap but across the zone: 0.16 of the frame each way is more than 0.6 box heights.
    corners = frame(track([(4, (0.21, 0.21))], "a"), track([(4, (0.38, 0.38)), (2, NOWHERE_PT)], "b", start_s=4.5))
    assert analyse_observations(corners, ZONES).visits.filter(pl.col("zone") == "shelf").height == 2
    assert analyse_observations(corners, ZONES).loitering.is_empty()


def test_continued_visits_bounds_the_gap_and_the_jump_and_pairs_nearest_first():
    from watershop_dagster.zones.analytics import VisitEnds, continued_visits

    def visit(index, enter_s, exit_s, enter_x, exit_x, h=100.0):
        return VisitEnds(index, round(enter_s * 1e6), round(exit_s * 1e6), enter_x, 500.0, h, exit_x, 500.0, h)

    gap_us = 1_500_000
    # 1 continues 0 (0.5 s later, 10 px away); 2 starts too late after 1 (2 s).
    assert continued_visits([visit(0, 0, 10, 0, 300), visit(1, 10.5, 20, 310, 600), visit(2, 22, 30, 600, 600)],
                            gap_us) == {1: 0}
    # 70 px is 0.7 box heights of 100 px: too far; of a 120 px box (the larger end counts): near enough.
    assert continued_visits([visit(0, 0, 10, 0, 300), visit(1, 10.5, 20, 370, 600)], gap_us) == {}
    assert continued_visits([visit(0, 0, 10, 0, 300, h=120), visit(1, 10.5, 20, 370, 600)], gap_us) == {1: 0}
    # Two candidates for one predecessor: the nearer takes it, the other starts its own presence.
    assert continued_visits([visit(0, 0, 10, 0, 300), visit(1, 10.5, 20, 340, 600), visit(2, 10.8, 20, 305, 600)],
                            gap_us) == {2: 0}
    # A visit that starts before the other ended does not continue it.
    assert continued_visits([visit(0, 0, 10, 0, 300), visit(1, 9.5, 20, 300, 600)], gap_us) == {}


def test_person_standing_still_for_minutes_is_one_long_visit():
    rng = np.random.default_rng(3)
    rows = track([(600, SHELF_PT), (2, NOWHERE_PT)], fps=15)
    for row in rows[:-30]:  # box jitter of a few pixels, as a real detector gives
        dx, dy = rng.normal(0, 3, 2)
        row.update(x1=row["x1"] + dx, x2=row["x2"] + dx, y2=row["y2"] + dy)
    visits = zone_visits(frame(rows), [SHELF])
    assert visits.height == 1
    assert visits["dwell_s"][0] == pytest.approx(600, abs=0.1)
    events = loitering_events(visits, [SHELF])
    assert events["alert_ts"].to_list() == [at(5)]


def test_polygon_in_pixels_of_the_detect_size_matches_relative_coordinates_at_any_resolution():
    relative = parse_polygon("0.2,0.2,0.4,0.2,0.4,0.4,0.2,0.4")
    pixels = parse_polygon(["256,144", "512,144", "512,288", "256,288"], width=1280, height=720)
    np.testing.assert_allclose(relative, pixels)
    zone = Zone(CAM, "shelf", "shelf", None, 3, 0, pixels)
    hd = frame(track([(2, SHELF_PT), (2, NOWHERE_PT)]))
    small = frame(track([(2, SHELF_PT), (2, NOWHERE_PT)], width=640, height=360))
    assert zone_visits(hd, [zone]).equals(zone_visits(small, [zone]))
    assert zone_visits(hd, [zone]).height == 1


def test_transitions_count_next_zone_per_track():
    obs = frame(
        track([(2, SHELF_PT), (2, AISLE_PT), (2, SHELF_PT), (2, NOWHERE_PT)], "a"),
        track([(2, SHELF_PT), (2, AISLE_PT), (2, NOWHERE_PT)], "b", start_s=1),
    )
    transitions = zone_transitions(zone_visits(obs, ZONES))
    assert transitions.schema == pl.Schema(ZONE_TRANSITIONS)
    assert transitions.select("from_zone", "to_zone", "transitions", "tracks").rows() == [
        ("aisle", "shelf", 1, 1), ("shelf", "aisle", 2, 2)]


def test_footfall_in_out_and_passers_by():
    obs = frame(
        track([(2, ENTRANCE_PT), (5, AISLE_PT)], "walks-in", start_s=0),
        track([(5, AISLE_PT), (2, ENTRANCE_PT)], "walks-out", start_s=10),
        track([(3, ENTRANCE_PT)], "peeks", start_s=20),
        track([(2, NOWHERE_PT), (2, ENTRANCE_PT), (2, NOWHERE_PT)], "crosses", start_s=30),
    )
    result = analyse_observations(obs, ZONES)
    assert result.footfall.schema == pl.Schema(FOOTFALL)
    assert result.footfall.select("track_id", "direction", "zone", "ts").rows() == [
        ("walks-in", "in", "entrance", at(1.9)), ("walks-out", "out", "entrance", at(16.9))]
    assert footfall(result.visits, result.tracks).equals(result.footfall)


def test_occupancy_per_minute_mean_max_and_entries():
    obs = frame(
        track([(30, AISLE_PT), (3, NOWHERE_PT)], "a", start_s=0),
        track([(60, AISLE_PT), (3, NOWHERE_PT)], "b", start_s=15),
    )
    occupancy = zone_occupancy(zone_visits(obs, [AISLE]))
    assert occupancy.schema == pl.Schema(ZONE_OCCUPANCY)
    first, second = occupancy.rows(named=True)
    assert first["minute"] == T0 and second["minute"] == T0 + timedelta(minutes=1)
    assert first["mean_people"] == pytest.approx((29.9 + 45) / 60)
    assert (first["max_people"], first["entries"]) == (2, 2)
    assert second["mean_people"] == pytest.approx(14.9 / 60)
    assert (second["max_people"], second["entries"]) == (1, 0)


def test_bad_rows_are_rejected_with_a_reason_and_the_rest_still_count():
    good = track([(2, SHELF_PT), (2, NOWHERE_PT)])
    bad = [dict(good[0], track_id="x", x2=good[0]["x1"] - 1), dict(good[1], track_id="y", frame_width=0),
           dict(good[2], track_id=None), dict(good[3])]
    obs = frame(good, bad)
    valid, rejected = split_valid_observations(obs)
    assert valid.height == len(good)
    assert sorted(rejected["reason"].to_list()) == sorted(
        ["empty box", "bad frame size", "missing value", "duplicate observation of one track at one timestamp"])
    result = analyse_observations(obs, ZONES)
    assert result.rejected.height == 4 and result.visits.height == 1


def test_person_tracks_summary_samples_the_path_on_movement():
    obs = frame(track([(10, SHELF_PT)], "still", identity="staff-1"),
                track([(1, SHELF_PT), (1, AISLE_PT)], "mover"))
    tracks = person_tracks(obs)
    assert tracks.schema == pl.Schema(PERSON_TRACKS)
    still = tracks.filter(pl.col("track_id") == "still").row(0, named=True)
    assert still["observations"] == 100 and still["duration_s"] == pytest.approx(9.9)
    assert len(still["path"]) == 2 and still["identity"] == "staff-1"
    assert still["median_box_height"] == pytest.approx(0.3 * H)
    mover = tracks.filter(pl.col("track_id") == "mover").row(0, named=True)
    assert [round(p["x"], 2) for p in mover["path"]] == [0.3, 0.7, 0.7]


def test_heatmap_counts_every_observation_and_renders_a_png(tmp_path):
    obs = frame(track([(10, SHELF_PT)], "a"), track([(5, AISLE_PT)], "b"))
    cells = heatmap_cells(obs, cols=10, rows=10)
    assert cells.schema == pl.Schema(HEATMAP_CELLS)
    assert cells["samples"].sum() == obs.height
    grid = heatmap_grid(cells, CAM)
    assert grid.shape == (10, 10)
    assert grid[3, 3] == pytest.approx(9.9) and grid[5, 7] == pytest.approx(4.9)
    assert heatmap_grid(cells, "empty-cam", cols=10, rows=10).shape == (10, 10)
    still = np.full((72, 128, 3), 90, dtype=np.uint8)
    png = render_heatmap_png(grid, tmp_path / "heat.png", still_frame=still, zones=ZONES, title="aisle-cam 2026-03-02")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["heat.png"]


def test_cameras_without_zones_and_empty_input_give_empty_typed_frames():
    obs = frame(track([(2, SHELF_PT)], camera="office"))
    result = analyse_observations(obs, ZONES)
    assert result.visits.is_empty() and result.visits.schema == pl.Schema(ZONE_VISITS)
    assert result.tracks.height == 1
    empty = analyse_observations(pl.DataFrame(schema=PERSON_OBSERVATIONS), ZONES)
    assert all(getattr(empty, name).is_empty() for name in ("visits", "loitering", "footfall", "occupancy",
                                                              "transitions", "heatmap", "tracks"))


def _reference_visits(times, inside, inertia, debounce):
    """Frame-by-frame state machine the vectorised code must agree with."""
    visits, group, streak, run_start, last_in = [], None, 0, None, None
    for t, is_in in zip(times, inside):
        if not is_in:
            streak = 0
            continue
        if last_in is not None and t - last_in > debounce:
            if group and group["enter"] is not None:
                visits.append((group["enter"], last_in))
            group, streak = None, 0
        if streak == 0:
            run_start = t
        streak += 1
        group = group or {"enter": None}
        if group["enter"] is None and streak >= inertia:
            group["enter"] = run_start
        last_in = t
    if group and group["enter"] is not None:
        visits.append((group["enter"], last_in))
    return visits


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 20), st.booleans()), min_size=1, max_size=80),
    inertia=st.integers(1, 4),
    debounce_tenths=st.integers(1, 15),
)
@example(steps=[(1, True), (1, False), (1, True), (30, False)], inertia=1, debounce_tenths=2)  # gap == debounce
@example(steps=[(1, True), (1, True), (2, False)], inertia=2, debounce_tenths=2)  # lost exactly at the debounce
@example(steps=[(1, True), (1, True), (3, True), (1, True)], inertia=2, debounce_tenths=2)  # unobserved > debounce
def test_vectorised_visits_match_a_frame_by_frame_reference(steps, inertia, debounce_tenths):
    """Random gaps (0.1-2 s) and inside/outside flags; visits must equal the state machine's."""
    times, rows, t = [], [], 0.0
    for gap_tenths, is_in in steps:
        t += gap_tenths / 10
        times.append(round(t * 1_000_000))
        rows += track([(0.1, SHELF_PT if is_in else NOWHERE_PT)], start_s=round(t, 1))
    zone = Zone(CAM, "shelf", "shelf", None, inertia, 0, SHELF.polygon)
    debounce = debounce_tenths / 10
    visits = zone_visits(frame(rows), [zone], exit_debounce_seconds=debounce)
    got = [(int(e.timestamp() * 1e6) - int(T0.timestamp() * 1e6), int(x.timestamp() * 1e6) - int(T0.timestamp() * 1e6))
           for e, x in visits.select("enter_ts", "exit_ts").rows()]
    expected = _reference_visits(times, [f for _, f in steps], inertia, round(debounce * 1_000_000))
    assert got == expected
    for (enter, exit_), reason in zip(got, visits["exit_reason"]):
        assert exit_ >= enter
        assert reason == ("track_lost" if times[-1] - exit_ <= round(debounce * 1_000_000) else "left_zone")


def test_consistency_checks_pass_on_real_output_and_catch_broken_rows():
    from watershop_dagster.zones import checks

    obs = frame(track([(6, SHELF_PT), (3, NOWHERE_PT), (6, SHELF_PT), (2, AISLE_PT)], "a"),
                track([(2, ENTRANCE_PT), (8, SHELF_PT)], "b", start_s=8))
    result = analyse_observations(obs, ZONES)
    assert result.visits.height == 5 and result.loitering.height == 3
    assert checks.visits_outside_track_life(result.visits, result.tracks).is_empty()
    assert checks.visits_exit_before_entry(result.visits).is_empty()
    assert checks.overlapping_visits(result.visits).is_empty()
    assert checks.loitering_without_visit(result.loitering, result.visits).is_empty()

    shifted = result.visits.with_columns(
        pl.when(pl.col("track_id") == "b").then(pl.col("enter_ts") - timedelta(seconds=30))
        .otherwise(pl.col("enter_ts")).alias("enter_ts"))
    assert checks.visits_outside_track_life(shifted, result.tracks)["track_id"].to_list() == ["b", "b"]
    swapped = result.visits.head(1).with_columns(enter_ts=pl.col("exit_ts"), exit_ts=pl.col("enter_ts"))
    assert checks.visits_exit_before_entry(swapped).height == 1
    doubled = pl.concat([result.visits, result.visits.head(1)])
    assert checks.overlapping_visits(doubled).height == 1
    late = result.loitering.with_columns(alert_ts=pl.col("exit_ts") + timedelta(seconds=1))
    assert checks.loitering_without_visit(late, result.visits).height == 3
