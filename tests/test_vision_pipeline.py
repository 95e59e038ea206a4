from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import polars as pl
import pytest

from bench.naive_vision import naive_process_video
from tests.test_vision_decode import write_video
from tests.vision_helpers import face_distance
from watershop_dagster.config import VisionConfig
from watershop_dagster.vision.decode import FootageDecodeError
from watershop_dagster.vision.faces import detect_faces, embed_faces
from watershop_dagster.vision.footage import FootageFile
from watershop_dagster.vision.pipeline import (
    FACE_DETECTIONS_SCHEMA,
    FACE_EMBEDDINGS_SCHEMA,
    FACE_TRACKS_SCHEMA,
    FRAMES_SCHEMA,
    MAX_SLICE_SECONDS,
    SLICE_SECONDS,
    SLICES_PER_WORKER,
    PipelineTuning,
    VisionResult,
    plan_slices,
    process_footage,
    process_segment,
    process_video,
    slice_length,
    split_tail,
)

START = datetime(2024, 5, 1, 4, 30, tzinfo=UTC)

pytestmark = pytest.mark.slow


def load(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


def reference(path: Path) -> np.ndarray:
    rgb = load(path)[:, :, :3].copy()
    dets = detect_faces(rgb, None, 40)
    return embed_faces(rgb, [max(dets, key=lambda d: d.width)])[0]


def assert_schemas(result: VisionResult) -> None:
    assert result.frames.schema == FRAMES_SCHEMA
    assert result.face_detections.schema == FACE_DETECTIONS_SCHEMA
    assert result.face_tracks.schema == FACE_TRACKS_SCHEMA
    assert result.face_embeddings.schema == FACE_EMBEDDINGS_SCHEMA


def assert_consistent(result: VisionResult) -> None:
    det, emb, tracks = result.face_detections, result.face_embeddings, result.face_tracks
    assert det["detection_id"].is_unique().all()
    assert emb["embedding_id"].is_unique().all()
    assert det.filter(pl.col("embedded")).height == emb.height
    assert set(emb["detection_id"]) <= set(det["detection_id"])
    assert set(det["track_id"]) == set(tracks["track_id"])
    assert (tracks["n_embeddings"] >= 1).all()  # every track gets at least one embedding
    assert tracks["n_detections"].sum() == det.height
    assert tracks["n_embeddings"].sum() == emb.height


def test_plan_slices():
    assert plan_slices(9.2) == [(0.0, None)]
    assert plan_slices(None) == [(0.0, None)]
    slices = plan_slices(3600.0)
    assert len(slices) == 60 and slices[0] == (0.0, 60.0) and slices[-1] == (3540.0, None)
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))


def test_slice_length_grows_with_the_footage_while_every_worker_keeps_slices():
    # each slice starts blind (keyframe decode, pre-roll, a whole-frame search): an hour on 2
    # workers is cut into 5-minute slices (12, 6 a worker), an 8-minute clip still into 60 s ones
    assert slice_length(3600.0, workers=2) == MAX_SLICE_SECONDS == 300.0
    assert slice_length(480.0, workers=2) == SLICE_SECONDS == 60.0
    assert slice_length(900.0, workers=2) == 900.0 / (2 * SLICES_PER_WORKER)
    assert slice_length(900.0, workers=1) == 900.0 / SLICES_PER_WORKER
    assert slice_length(9.0, workers=2, min_slice_s=3.0) == 3.0  # a tuned minimum still holds
    assert len(plan_slices(3600.0, slice_length(3600.0, workers=2))) == 12


def test_split_tail_halves_the_last_slice_of_each_worker_and_keeps_time_order():
    hour, group = SimpleNamespace(), (SimpleNamespace(), SimpleNamespace())
    slices = plan_slices(3600.0, 300.0)
    jobs = [(hour, None, t0, t1, None) for t0, t1 in slices]
    split = split_tail(jobs, workers=2, durations={id(hour): 3600.0}, min_slice_s=60.0)
    bounds = [(t0, t1) for _, _, t0, t1, _ in split]
    assert bounds[:10] == slices[:10]
    assert bounds[10:] == [(3000.0, 3150.0), (3150.0, 3300.0), (3300.0, 3450.0), (3450.0, None)]
    assert split_tail(jobs, workers=1, durations={id(hour): 3600.0}, min_slice_s=60.0) == jobs
    # too short to halve, an unknown duration, or a group of short files: left whole
    short = [(hour, None, 0.0, 100.0, None), (hour, None, 100.0, None, None), (group, None, 0.0, None, None)]
    assert split_tail(short, workers=3, durations={id(hour): 200.0}, min_slice_s=60.0) == short
    assert split_tail(jobs[-1:], workers=2, durations={}, min_slice_s=60.0) == jobs[-1:]


# ---------------------------------------------------------------- a synthetic visit


def visit_frames(faces_dir: Path):
    """640x360 frames of a static scene; from 1 s a face walks in from the left and stands,
    swaying, at the counter until 7.5 s."""
    face = cv2.resize(load(faces_dir / "John_Salley" / "000179_02159509.jpg"), (120, 120))
    rng = np.random.default_rng(3)
    background = np.kron(rng.integers(40, 200, (9, 16, 3), dtype=np.uint8), np.ones((40, 40, 1), np.uint8))

    def frame(i: int, t: float) -> np.ndarray:
        image = background.copy()
        if 1.0 <= t < 7.5:
            x = int(min(300, -120 + 200 * (t - 1.0)) + 4 * np.sin(3 * t))
            x0, x1 = max(0, x), min(640, x + 120)
            if x1 > x0:
                image[100:220, x0:x1] = face[:, x0 - x : x1 - x]
        return image

    return frame


@pytest.fixture(scope="module")
def visit_video(tmp_path_factory, faces_dir) -> Path:
    """10 fps, 9 s: the visit of `visit_frames`; the last 1.5 s are empty again."""
    times = [i / 10 for i in range(90)]
    return write_video(tmp_path_factory.mktemp("visit") / "visit.mp4", times, (640, 360), visit_frames(faces_dir), gop=20)


def test_synthetic_visit_sliced_in_processes_and_stitched(visit_video, faces_dir):
    footage = FootageFile(visit_video, "counter", START, "plain")
    tuning = PipelineTuning(slice_seconds=3.0)  # 3 slices, the face crosses two boundaries
    parallel = process_video(footage, VisionConfig(), workers=2, tuning=tuning)
    assert_schemas(parallel)
    assert_consistent(parallel)
    assert parallel.stats["workers"] == 2
    assert parallel.face_tracks.height == 1, parallel.face_tracks
    track = parallel.face_tracks.row(0, named=True)
    assert track["n_detections"] >= 10
    assert 1 <= track["n_embeddings"] <= 4  # several seconds of face, a few embeddings
    assert (track["end_utc"] - track["start_utc"]).total_seconds() > 4
    salley = reference(faces_dir / "John_Salley" / "000183_02159543.jpg")
    simm = reference(faces_dir / "John_Simm" / "000297_00470170.jpg")
    vectors = np.stack(parallel.face_embeddings["embedding"].to_list())
    assert face_distance(vectors, salley).max() < 0.6
    assert face_distance(vectors, simm).min() > 0.6
    # idle start and end: frames scored but not searched, but for the slice's first (searched whole)
    frames = parallel.frames
    assert frames.filter(pl.col("pts_s") < 0.9)["searched"].to_list() == [True] + [False] * 4
    assert frames["ts_utc"].is_sorted()
    assert frames["ts_utc"][0] == START

    # the same rows whatever the worker count (IDs derive from camera, file start, frame time)
    serial = process_video(footage, VisionConfig(), workers=1, tuning=tuning)
    for name in ("frames", "face_detections", "face_tracks", "face_embeddings"):
        assert getattr(serial, name).equals(getattr(parallel, name)), name


def test_store_face_crops_only_when_asked(visit_video):
    footage = FootageFile(visit_video, "counter", START, "plain")
    off = process_segment(footage, VisionConfig(), 0.0, 5.0)
    assert off.crops == []
    on = process_segment(footage, VisionConfig(store_face_crops=True), 0.0, 5.0)
    assert [d for d, _ in on.crops] == on.face_embeddings["detection_id"].to_list()
    assert all(jpeg[:2] == b"\xff\xd8" for _, jpeg in on.crops)
    assert on.face_detections.equals(off.face_detections)


def test_bad_file_raises_or_is_skipped(visit_video, tmp_path):
    data = write_video(tmp_path / "fast.mp4", [i / 10 for i in range(80)], faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    good = FootageFile(visit_video, "counter", START, "plain")
    bad = FootageFile(cut, "counter", datetime(2024, 5, 1, 5, 0, tzinfo=UTC), "plain")
    with pytest.raises(FootageDecodeError, match="cut.mp4"):
        process_video(bad, VisionConfig(), workers=1)
    result = process_footage([good, bad], VisionConfig(), workers=1, on_error="skip")
    assert [p for p, _ in result.errors] == [cut]
    assert result.face_tracks.height == 1
    assert result.frames["ts_utc"].max() < bad.start_utc


def test_short_segments_run_as_one_stream(tmp_path, faces_dir):
    """Frigate-style 3 s segments: one continuous run, so one track and few embeddings."""
    frame = visit_frames(faces_dir)
    files = []
    for k in range(3):
        times = [i / 10 for i in range(30)]
        path = write_video(tmp_path / f"{k}.mp4", times, (640, 360), lambda i, t, k=k: frame(i, 3 * k + t))
        files.append(FootageFile(path, "counter", START + timedelta(seconds=3 * k), "frigate"))
    result = process_footage(files, VisionConfig(), workers=1)
    assert_schemas(result)
    assert_consistent(result)
    assert result.face_tracks.height == 1
    assert result.face_tracks["n_embeddings"][0] <= 3
    assert result.frames["ts_utc"].is_sorted() and result.frames.height == 90 / 2  # 5 of 10 fps scored
    # a corrupt segment is skipped; the others still give the track
    files[1].path.write_bytes(b"not a video" * 100)
    skipped = process_footage(files, VisionConfig(), workers=1, on_error="skip")
    assert [p for p, _ in skipped.errors] == [files[1].path]
    assert skipped.face_tracks.height >= 1


# ---------------------------------------------------------------- real footage


def test_hamilton_clip_two_people(videos_dir, faces_dir):
    footage = FootageFile(videos_dir / "short_hamilton_clip.mp4", "counter", START, "plain")
    result = process_video(footage, VisionConfig(), workers=2)
    assert_schemas(result)
    assert_consistent(result)
    assert result.face_detections.height >= 15
    assert result.face_tracks.height >= 2
    lin = reference(faces_dir / "_probe" / "lin-manuel-miranda.png")
    per_track = {
        track: np.stack(group["embedding"].to_list())
        for (track,), group in result.face_embeddings.group_by("track_id", maintain_order=True)
    }
    dist_to_lin = {t: float(face_distance(v, lin).min()) for t, v in per_track.items()}
    lin_tracks = [t for t, d in dist_to_lin.items() if d < 0.6]
    others = [t for t, d in dist_to_lin.items() if d > 0.6]
    assert lin_tracks and others  # Lin-Manuel Miranda on stage, and someone in the audience
    assert face_distance(per_track[lin_tracks[0]], per_track[others[0]]).min() > 0.6
    # the longest track is Lin's, and costs few embeddings for its many detections
    longest = result.face_tracks.sort("n_detections", descending=True).row(0, named=True)
    assert longest["track_id"] in lin_tracks
    assert longest["n_embeddings"] <= 3 < longest["n_detections"]


def test_no_people_no_detections_and_cheap(videos_dir):
    footage = FootageFile(videos_dir / "bottle-detection.mp4", "counter", START, "plain")
    t0 = time.process_time()
    result = process_segment(footage, VisionConfig())
    cpu = time.process_time() - t0
    assert_schemas(result)
    assert result.face_detections.is_empty() and result.face_embeddings.is_empty()
    frames = result.frames
    assert frames.height >= 0.95 * 40 * 5  # every 1/max_fps bucket scored (40 s at 5 fps)
    assert frames["searched"].sum() <= 0.4 * frames.height  # searches back off: nothing is found
    assert cpu < 20, cpu  # 40 s of footage (≈3 s when the machine is not busy)


def test_naive_baseline(videos_dir):
    footage = FootageFile(videos_dir / "short_hamilton_clip.mp4", "counter", START, "plain")
    naive = naive_process_video(footage, interval_s=1.0)
    assert naive.n_frames == 10
    assert naive.embeddings.dtype == np.float32 and naive.embeddings.shape[1] == 128
    assert len(naive.ts_utc) == len(naive.embeddings) >= 5
