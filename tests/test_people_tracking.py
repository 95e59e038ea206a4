"""People without faces: foreground blobs + ByteTrack on generated supermarket clips, and the real clip."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from watershop_dagster.fixtures import fixtures_dir
from watershop_dagster.people import PERSON_OBSERVATIONS, PeopleSettings, track_people, track_people_files
from watershop_dagster.people.evaluation import box_iou, score_tracks
from watershop_dagster.synthetic import supermarket as sm
from watershop_dagster.synthetic.footage import EncodeOptions, _encode, frigate_path, frigate_segments

START = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
SIZE = (640, 360)
REAL_CLIP = "video/one-by-one-person-detection.mp4"
REAL_CLIP_PEOPLE = 6  # counted by eye on frames every 4 s: six people enter, stand at the table and leave one by one


def _scene(shoppers, fps: float, lighting: sm.Lighting | None = None, seed: int = 11) -> sm.SupermarketScene:
    return sm.SupermarketScene(sm.camera_view("cam", 0, seed), shoppers, START, fps, SIZE, lighting=lighting, sensor_noise=2.0)


def _track(scene: sm.SupermarketScene, duration_s: float) -> pl.DataFrame:
    return track_people(sm.iter_scene_frames(scene, duration_s), "cam", START, PeopleSettings(max_fps=None))


def _majority_share(observations: pl.DataFrame, truth: pl.DataFrame, person: str, fps: float) -> tuple[float, str | None]:
    """Share of the person's (visible) frames in which the track most often matched to them covers them (IoU >= 0.5)."""
    gt = truth.filter((pl.col("person") == person) & (pl.col("visibility") >= 0.3))
    obs = observations.with_columns(((pl.col("ts") - pl.lit(START)).dt.total_microseconds() * fps / 1e6).round().cast(pl.Int64).alias("frame"))
    matched = []
    for row in gt.iter_rows(named=True):
        here = obs.filter(pl.col("frame") == row["frame"])
        if here.is_empty():
            matched.append(None)
            continue
        ious = box_iou(pl.DataFrame([row]).select("x1", "y1", "x2", "y2").to_numpy(), here.select("x1", "y1", "x2", "y2").to_numpy())[0]
        best = int(ious.argmax())
        matched.append(here["track_id"][best] if ious[best] >= 0.5 else None)
    ids = [m for m in matched if m is not None]
    if not ids:
        return 0.0, None
    top = max(set(ids), key=ids.count)
    return ids.count(top) / len(matched), top


def test_schema_is_the_agreed_interface():
    assert dict(PERSON_OBSERVATIONS) == {
        "camera": pl.String, "track_id": pl.String, "ts": pl.Datetime("us", "UTC"),
        "x1": pl.Float64, "y1": pl.Float64, "x2": pl.Float64, "y2": pl.Float64,
        "frame_width": pl.Int64, "frame_height": pl.Int64, "identity": pl.String, "score": pl.Float64,
    }  # fmt: skip


def test_empty_input_gives_empty_table_and_naive_start_is_refused():
    assert track_people([], "cam", START).schema == PERSON_OBSERVATIONS
    with pytest.raises(ValueError, match="timezone"):
        track_people([], "cam", datetime(2024, 1, 1))


@pytest.mark.slow
def test_person_standing_still_three_minutes_keeps_one_track():
    fps = 5.0
    view = sm.camera_view("cam", 0, 11)
    spot = (640.0, 470.0)  # base px: in front of the promo stand
    walker = sm.scripted_shopper("still", [((-60.0, 620.0), 0), ((200.0, 620.0), 0), (spot, 185.0), ((-60.0, 620.0), 0)], 3.0, still=True)
    scene = sm.SupermarketScene(view, [walker], START, fps, SIZE, sensor_noise=2.0)
    duration = walker.t_exit + 2.0
    observations = _track(scene, duration)
    truth = scene.truth_boxes(round(duration * fps))
    share, track = _majority_share(observations, truth, "still", fps)
    assert observations["track_id"].n_unique() == 1, observations.group_by("track_id").len()
    assert share >= 0.9
    # the one track covers the whole motionless stretch
    stand = next(leg for leg in walker.legs if leg.start == leg.end)
    times = observations.filter(pl.col("track_id") == track)["ts"]
    assert (times.min() - START).total_seconds() <= stand.t0 and (times.max() - START).total_seconds() >= stand.t1


@pytest.mark.slow
def test_two_people_crossing_keep_their_ids_in_most_frames():
    fps = 10.0
    left, right = (-60.0, 560.0), (1340.0, 560.0)
    a = sm.scripted_shopper("a", [(left, 0), ((640.0, 570.0), 0), (right, 0)], 1.0, speed_m_s=1.1, seed=1)
    b = sm.scripted_shopper("b", [(right, 0), ((640.0, 550.0), 0), (left, 0)], 1.0, speed_m_s=1.0, seed=2)
    scene = _scene([a, b], fps)
    duration = max(a.t_exit, b.t_exit) + 1.0
    observations = _track(scene, duration)
    truth = scene.truth_boxes(round(duration * fps))
    share_a, track_a = _majority_share(observations, truth, "a", fps)
    share_b, track_b = _majority_share(observations, truth, "b", fps)
    assert track_a != track_b
    assert share_a >= 0.7 and share_b >= 0.7, (share_a, share_b)


@pytest.mark.slow
def test_light_changes_spawn_no_tracks_and_keep_a_standing_person():
    fps = 5.0
    lighting = sm.Lighting(steps=((10.0, 0.25), (25.0, -0.4), (40.0, 0.3)), drift=0.05, drift_period_s=20.0)
    empty = _track(_scene([], fps, lighting), 50.0)
    assert empty.is_empty(), empty.group_by("track_id").len()
    standing = sm.scripted_shopper("s", [((-60.0, 600.0), 0), ((400.0, 600.0), 45.0), ((-60.0, 600.0), 0)], 1.0)
    observations = _track(_scene([standing], fps, lighting), standing.t_exit + 1.0)
    # one track holds the person through all three lighting steps while standing
    stand = standing.legs[1]
    spans = observations.group_by("track_id").agg(
        ((pl.col("ts").min() - pl.lit(START)).dt.total_microseconds() / 1e6).alias("first"),
        ((pl.col("ts").max() - pl.lit(START)).dt.total_microseconds() / 1e6).alias("last"),
    )
    assert spans.filter((pl.col("first") <= stand.t0 + 0.5) & (pl.col("last") >= stand.t1)).height == 1, spans
    # known weakness at 5 fps: walking off after the steps may start a second track (see report)
    assert spans.height <= 2, spans


@pytest.mark.slow
def test_tracks_from_h264_supermarket_clip(tmp_path):
    """The real path: an encoded MP4 with several shoppers, decoded and tracked, scored against the truth."""
    duration = 60.0
    scene = sm.scene_for("cam", 1, START, duration, seed=12, size=SIZE, shoppers_per_minute=5.0, still_shoppers=0)
    path = sm.render_scene(scene, tmp_path / "clip.mp4", duration)
    observations = track_people(path, "cam", START, PeopleSettings(max_fps=7.5))
    assert observations.schema == PERSON_OBSERVATIONS
    assert set(observations["frame_width"]) == {SIZE[0]} and set(observations["camera"]) == {"cam"}
    truth = sm.scene_truth(scene, duration)
    score = score_tracks(observations, truth.boxes, START, scene.fps, max_fps=7.5)
    assert score.recall >= 0.75 and score.precision >= 0.8, score
    assert score.tracks <= 2 * score.people, score


@pytest.mark.slow
def test_one_track_across_frigate_segments(tmp_path):
    fps = 10.0
    walker = sm.scripted_shopper("w", [((-60.0, 600.0), 0), ((500.0, 560.0), 8.0), ((1340.0, 620.0), 0)], 2.0)
    scene = _scene([walker], fps)
    files = []
    for seg_start, first, count in frigate_segments(START, 20.0, fps, 10.0):
        path = frigate_path(tmp_path, "cam", seg_start)
        _encode(scene, path, first, count, EncodeOptions(keyframe_s=10.0))
        files.append((path, seg_start))
    observations = track_people_files(files, "cam", PeopleSettings(max_fps=None))
    assert observations["track_id"].n_unique() == 1
    seconds = (observations["ts"] - START).dt.total_microseconds() / 1e6
    assert seconds.min() < 8.0 and seconds.max() > 12.0


@pytest.mark.slow
def test_real_clip_counts_the_people_entering_one_by_one():
    clip = fixtures_dir() / REAL_CLIP
    if not clip.exists():
        pytest.skip(f"shared fixture {clip} is absent (set WATERSHOP_FIXTURES to the fixtures folder)")
    observations = track_people(clip, "room", START, PeopleSettings(max_fps=5.0))
    assert abs(observations["track_id"].n_unique() - REAL_CLIP_PEOPLE) <= 1
