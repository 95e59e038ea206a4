"""Faces and people from one decode (people.stream): the same rows as two separate passes, every
frame fed to the people tracker once and in time order, whatever slices and failed files."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.test_vision_decode import write_video
from tests.test_vision_pipeline import START, visit_frames, visit_video  # noqa: F401 (fixture)
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
    for name in FACE_TABLES:
        assert getattr(both, name).equals(getattr(alone, name)), name
    assert people.observations().equals(track_people(visit_video, "counter", START))
    assert abs(people.seconds - 9.0) < 1e-6  # 90 frames at 10 fps


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
