"""Faces and people from one decode (people.stream): every frame fed to the people tracker once and
in time order, whatever slices and failed files, giving the person tracks of a separate pass; faces
are looked for only in the tracked persons' heads (a plain frame sink leaves the face rows as they were)."""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np
import polars as pl
import pytest

from tests.test_vision_decode import write_video
from tests.test_vision_pipeline import START, load, visit_frames, visit_video  # noqa: F401 (fixture)
from watershop_dagster import catalog
from watershop_dagster.config import VisionConfig
from watershop_dagster.people import track_people, track_people_files
from watershop_dagster.people.stream import faces_and_people
from watershop_dagster.vision.decode import iter_frames
from watershop_dagster.vision.footage import FootageFile
from watershop_dagster.vision.pipeline import PipelineTuning, process_footage

FACE_TABLES = [dataset.name for dataset in catalog.CAMERA_OUTPUTS]

pytestmark = pytest.mark.slow


def test_one_decode_gives_the_rows_of_two_passes_across_slices(visit_video):  # noqa: F811
    footage = FootageFile(visit_video, "counter", START, "plain")
    tuning = PipelineTuning(slice_seconds=3.0)  # 3 slices, each decoded with a pre-roll
    seen = []
    faces = process_footage([footage], VisionConfig(), tuning=tuning,
                            on_frame=lambda f, decoded: seen.append(decoded.pts_s))
    assert seen == [decoded.pts_s for decoded in iter_frames(visit_video)]  # each frame once, in order
    assert faces.stats["workers"] == 1  # a frame sink runs the slices here, in time order
    alone = process_footage([footage], VisionConfig(), workers=2, tuning=tuning)
    for name in FACE_TABLES:
        assert getattr(faces, name).equals(getattr(alone, name)), name

    both, people = faces_and_people([footage], "counter", VisionConfig(), tuning=tuning)
    assert people.observations().equals(track_people(visit_video, "counter", START))
    assert abs(people.seconds - 9.0) < 1e-6  # 90 frames at 10 fps


@pytest.fixture(scope="module")
def shopper_video(tmp_path_factory, faces_dir):
    """640x360, 10 fps, 10 s: from 1 s a person (a 56 px face on a shirt) walks in from the left
    and stands still from about 4 s; a sign swings at the right all along (motion, no person)."""
    face = cv2.resize(load(faces_dir / "John_Salley" / "000179_02159509.jpg"), (56, 56))
    rng = np.random.default_rng(5)
    background = np.kron(rng.integers(40, 200, (9, 16, 3), dtype=np.uint8), np.ones((40, 40, 1), np.uint8))

    def frame(i: int, t: float) -> np.ndarray:
        image = background.copy()
        wave = int(40 * np.sin(4 * t))
        image[100 + wave : 200 + wave, 520:620] = (230, 180, 150)
        if t >= 1.0:
            x = int(min(260, -80 + 110 * (t - 1.0)))
            x0, x1 = max(0, x), x + 140
            if x1 > 0:
                image[136:330, x0:x1] = (20, 60, 200)  # shirt, from the shoulders down
                fx0 = x + 42
                image[80:136, max(0, fx0) : fx0 + 56] = face[:, max(0, -fx0):]
        return image

    times = [i / 10 for i in range(100)]
    return write_video(tmp_path_factory.mktemp("shopper") / "shopper.mp4", times, (640, 360), frame, gop=20)


def test_faces_and_people_looks_for_faces_only_in_tracked_heads(shopper_video):
    footage = FootageFile(shopper_video, "counter", START, "plain")
    alone = process_footage([footage], VisionConfig(), workers=1)
    both, people = faces_and_people([footage], "counter", VisionConfig())
    observations = people.observations()
    assert observations.equals(track_people(shopper_video, "counter", START))  # the people side is unchanged
    assert both.face_tracks.height == 1 and both.face_tracks["n_embeddings"][0] >= 1
    assert both.face_detections.height >= 0.8 * alone.face_detections.height
    # every face found lies in the upper half of the person's box at that frame
    held = both.face_detections.join(observations, left_on="ts_utc", right_on="ts").filter(
        (pl.col("left") >= pl.col("x1") - 1) & (pl.col("right") <= pl.col("x2") + 1)
        & (pl.col("top") >= pl.col("y1") - 20) & (pl.col("bottom") <= pl.col("y1") + 0.5 * (pl.col("y2") - pl.col("y1"))))
    assert held["detection_id"].n_unique() == both.face_detections.height
    # ... and the detector saw far fewer pixels than in whole motion regions (the swinging sign is nobody)
    assert both.stats["search_pixels"] < 0.5 * alone.stats["search_pixels"]


def test_a_corrupt_segment_leaves_the_others_to_faces_and_people_in_time_order(tmp_path, faces_dir):
    frame = visit_frames(faces_dir)
    files = []
    for k in range(4):
        path = write_video(tmp_path / f"{k}.mp4", [i / 10 for i in range(30)], (640, 360),
                           lambda i, t, k=k: frame(i, 3 * k + t))
        files.append(FootageFile(path, "counter", START + timedelta(seconds=3 * k), "frigate"))
    files[1].path.write_bytes(b"not a video" * 100)
    seen = []
    faces = process_footage(files, VisionConfig(), on_error="skip",
                            on_frame=lambda f, decoded: seen.append(decoded.ts_utc))
    assert [p for p, _ in faces.errors] == [files[1].path]
    good = [f for f in files if f is not files[1]]
    assert seen == [d.ts_utc for f in good for d in iter_frames(f.path, f.start_utc)]
    alone = process_footage(files, VisionConfig(), workers=2, on_error="skip")
    for name in FACE_TABLES:
        assert getattr(faces, name).equals(getattr(alone, name)), name

    both, people = faces_and_people(files, "counter", VisionConfig())
    assert people.observations().equals(track_people_files([(f.path, f.start_utc) for f in good], "counter"))
