"""Synthetic footage: deterministic plans, decodable MP4s, layouts, ground truth and galleries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import numpy as np
import polars as pl
import pytest

from watershop_dagster.config import ShopConfig, init_workspace
from watershop_dagster.synthetic.footage import (
    GT_COLUMNS,
    ROLE_CUSTOMER,
    ROLE_STAFF,
    Visit,
    frigate_path,
    ground_truth_path,
    make_demo_footage,
    plan_visits,
    read_ground_truth,
    render_footage,
    write_clips,
    write_day,
)
from watershop_dagster.synthetic.gallery import crop_size, default_gallery, load_gallery

face_recognition = pytest.importorskip("face_recognition")

START = datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
SMALL = (320, 180)


@pytest.fixture(scope="module")
def gallery():
    return default_gallery()


def _decode(path: Path) -> tuple[av.video.stream.VideoStream, list[float], dict[str, str]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [frame.time for frame in container.decode(video=0)]
        return stream, times, dict(container.metadata)


def _no_temp_files(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".tmp")]
    assert leftovers == []


def test_plan_is_deterministic_and_well_formed():
    people = ["ann", "bob", "cid", "dee"]
    plan = plan_visits(people, START, 3600, 8, seed=7, staff="dee")
    assert plan == plan_visits(list(reversed(people)), START, 3600, 8, seed=7, staff="dee")
    assert plan != plan_visits(people, START, 3600, 8, seed=8, staff="dee")
    customers = [v for v in plan if v.role == ROLE_CUSTOMER]
    staff = [v for v in plan if v.role == ROLE_STAFF]
    assert len(customers) == 8 and staff and {v.person for v in staff} == {"dee"}
    assert "dee" not in {v.person for v in customers}
    end = START + timedelta(seconds=3600)
    for v in plan:
        assert START <= v.entry_utc < v.counter_start < v.counter_end < v.exit_utc <= end
    for v in customers:
        assert 30 <= (v.counter_end - v.counter_start).total_seconds() <= 180
    for before, after in zip(customers, customers[1:]):
        assert after.entry_utc >= before.exit_utc + timedelta(seconds=2)  # customers never overlap
        assert after.person != before.person
    assert [v.entry_utc for v in plan] == sorted(v.entry_utc for v in plan)
    # Staff stays for long stretches.
    assert sum((v.counter_end - v.counter_start).total_seconds() for v in staff) > 0.3 * 3600
    # Too many visits for the time: fewer, still inside the window.
    crowded = plan_visits(people, START, 300, 60, seed=1)
    assert 0 < len(crowded) < 5 and all(v.exit_utc <= START + timedelta(seconds=300) for v in crowded)


def test_render_decodes_with_exact_timestamps(tmp_path, gallery):
    plan = plan_visits(sorted(gallery), START, 8, 450, seed=1, counter_s=(2, 2.5), walk_s=(1, 1.2))
    assert len(plan) == 1
    out = render_footage(plan, gallery, tmp_path / "clip.mp4", START, 8.0, fps=15, size=SMALL, seed=2)
    stream, times, metadata = _decode(out)
    assert (stream.codec_context.width, stream.codec_context.height) == SMALL
    assert stream.average_rate == 15
    assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    assert len(times) == 120
    assert np.allclose(times, np.arange(120) / 15, atol=1e-3)
    assert metadata["creation_time"].startswith("2024-05-01T00:30:00")
    _no_temp_files(tmp_path)


def test_parallel_chunks_join_into_one_stream(tmp_path, gallery):
    plan = plan_visits(sorted(gallery), START, 8, 450, seed=3, counter_s=(2, 3), walk_s=(1, 1.2))
    assert len(plan) == 1
    out = render_footage(plan, gallery, tmp_path / "joined.mp4", START, 8.0, size=SMALL, keyframe_s=2.0, workers=2)
    _, times, _ = _decode(out)
    assert len(times) == 120 and np.allclose(times, np.arange(120) / 15, atol=1e-3)
    _no_temp_files(tmp_path)


def test_write_clips_films_only_the_given_stretches_one_file_each(tmp_path, gallery):
    tz = ZoneInfo("Asia/Kolkata")
    morning = datetime(2024, 5, 1, 8, 0, 5, tzinfo=tz)
    evening = datetime(2024, 5, 1, 18, 30, 0, tzinfo=tz)
    plan = [
        *plan_visits(["eileen_collins"], morning, 8, 450, seed=1, counter_s=(2, 2.5), walk_s=(1, 1.2)),
        *plan_visits(["grace_hopper"], evening, 8, 450, seed=2, counter_s=(2, 2.5), walk_s=(1, 1.2)),
    ]
    assert len(plan) == 2
    paths = write_clips(tmp_path, "counter", plan, [(evening, 8.0), (morning, 8.0)], gallery, fps=10, size=SMALL,
                        workers=2, seed=3)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "counter/2024-05-01/08-00-05.mp4", "counter/2024-05-01/18-30-00.mp4"]  # in time order
    for path, start in zip(paths, (morning, evening), strict=True):
        _, times, metadata = _decode(path)
        assert len(times) == 80 and np.allclose(times, np.arange(80) / 10, atol=1e-3)
        assert metadata["creation_time"].startswith(start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    with pytest.raises(ValueError, match="whole second"):
        write_clips(tmp_path, "counter", plan, [(morning.replace(microsecond=5), 2.0)], gallery, size=SMALL)
    _no_temp_files(tmp_path)


def test_write_day_plain_layout_and_ground_truth(tmp_path, gallery):
    shop = ShopConfig(id="shop1", timezone="Asia/Kolkata", opening_time=time(6, 0))
    truth = write_day(
        tmp_path, shop, "counter", date(2024, 5, 1), gallery, "plain",
        duration_s=40, visits_per_hour=90, counter_s=(5, 8), size=SMALL, seed=5,
    )  # fmt: skip
    video = tmp_path / "counter" / "2024-05-01" / "06-00-00.mp4"  # local time in the path
    assert video.is_file()
    _, times, metadata = _decode(video)
    assert len(times) == 600
    assert metadata["creation_time"].startswith("2024-05-01T00:30:00")  # 06:00 IST in UTC
    csv = ground_truth_path(tmp_path, "counter", date(2024, 5, 1))
    assert csv == tmp_path / "ground_truth" / "counter" / "2024-05-01.csv"
    assert csv.read_text().splitlines()[0] == ",".join(GT_COLUMNS)
    assert csv.read_text().splitlines()[1].endswith("Z")
    assert read_ground_truth(csv).equals(truth)
    assert truth.columns == list(GT_COLUMNS) and truth.height == 1
    start, end = START, START + timedelta(seconds=40)
    for row in truth.iter_rows(named=True):
        assert start <= row["entry_utc"] < row["counter_start_utc"] < row["counter_end_utc"] < row["exit_utc"] <= end
    # Same inputs, same plan; re-running replaces the files.
    again = write_day(
        tmp_path, shop, "counter", date(2024, 5, 1), gallery, "plain",
        duration_s=40, visits_per_hour=90, counter_s=(5, 8), size=SMALL, seed=5,
    )  # fmt: skip
    assert again.equals(truth)
    _no_temp_files(tmp_path)


def test_write_day_frigate_layout_in_utc(tmp_path, gallery):
    # 05:29:50 in Kolkata is 23:59:50 UTC the day before: segments cross the UTC date and hour.
    shop = ShopConfig(id="shop1", timezone="Asia/Kolkata", opening_time=time(5, 29, 50))
    truth = write_day(
        tmp_path, shop, "cam-1", date(2024, 5, 1), gallery, "frigate",
        duration_s=25, visits_per_hour=0, size=SMALL, segment_s=10, seed=1,
    )  # fmt: skip
    assert truth.height == 0 and truth.columns == list(GT_COLUMNS)
    expected = {
        tmp_path / "recordings/2024-04-30/23/cam-1/59.50.mp4": ("2024-04-30T23:59:50", 150),
        tmp_path / "recordings/2024-05-01/00/cam-1/00.00.mp4": ("2024-05-01T00:00:00", 150),
        tmp_path / "recordings/2024-05-01/00/cam-1/00.10.mp4": ("2024-05-01T00:00:10", 75),
    }
    assert set(tmp_path.joinpath("recordings").rglob("*.mp4")) == set(expected)
    for path, (created, frames) in expected.items():
        _, times, metadata = _decode(path)
        assert metadata["creation_time"].startswith(created)
        assert len(times) == frames and np.allclose(times, np.arange(frames) / 15, atol=1e-3)
    assert frigate_path(tmp_path, "cam-1", datetime(2024, 4, 30, 23, 59, 50, tzinfo=UTC)) in expected
    assert ground_truth_path(tmp_path, "cam-1", date(2024, 5, 1)).is_file()  # local date of the footage
    _no_temp_files(tmp_path)


def test_frigate_visit_continues_across_segments_and_idle_segments_can_be_skipped(tmp_path, gallery):
    shop = ShopConfig(id="shop1", timezone="UTC", opening_time=time(9, 0))
    truth = write_day(
        tmp_path, shop, "counter", date(2024, 5, 1), gallery, "frigate",
        duration_s=60, visits_per_hour=60, counter_s=(12, 14), size=SMALL, segment_s=5,
        skip_idle_segments=True, seed=2,
    )  # fmt: skip
    (visit,) = truth.iter_rows(named=True)
    segments = sorted(tmp_path.joinpath("recordings").rglob("*.mp4"))
    starts = [datetime.strptime(f"2024-05-01 {p.parent.parent.name}:{p.stem}", "%Y-%m-%d %H:%M.%S").replace(tzinfo=UTC) for p in segments]
    # Exactly the 5 s segments overlapping the visit, back to back.
    assert starts[0] <= visit["entry_utc"] < starts[0] + timedelta(seconds=5)
    assert starts[-1] < visit["exit_utc"] <= starts[-1] + timedelta(seconds=5)
    assert all(b - a == timedelta(seconds=5) for a, b in zip(starts, starts[1:]))
    assert len(segments) >= 4


def test_default_gallery_needs_no_fixtures(monkeypatch, tmp_path):
    monkeypatch.setenv("WATERSHOP_FIXTURES", str(tmp_path / "nowhere"))
    for folder in (None, tmp_path / "missing"):
        gallery = load_gallery(folder)
        assert set(gallery) == {"eileen_collins", "grace_hopper"}
        for crops in gallery.values():
            for crop in crops:
                assert crop.dtype == np.uint8 and crop.shape == (crop_size()[1], crop_size()[0], 3)
                assert len(face_recognition.face_locations(crop)) == 1


def test_gallery_from_faces_fixture_has_one_person_per_folder(faces_dir):
    gallery = load_gallery(faces_dir, max_images_per_person=1)
    folders = {p.name for p in faces_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert set(gallery) == folders
    assert all(len(crops) == 1 for crops in gallery.values())


def test_composited_face_is_detectable_at_the_counter(tmp_path, gallery):
    visit = Visit(
        person="eileen_collins",
        role=ROLE_CUSTOMER,
        entry_utc=START + timedelta(seconds=1),
        counter_start=START + timedelta(seconds=3),
        counter_end=START + timedelta(seconds=6),
        exit_utc=START + timedelta(seconds=8),
    )
    out = render_footage([visit], gallery, tmp_path / "face.mp4", START, 9.0, size=(1280, 720), seed=4)
    wanted = {0: "empty", 4 * 15: "counter", 7 * 15 + 7: "leaving"}
    frames = {}
    with av.open(str(out)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[wanted[index]] = frame.to_ndarray(format="rgb24")
    faces = face_recognition.face_locations(frames["counter"])
    assert len(faces) == 1
    top, right, bottom, left = faces[0]
    assert 80 <= bottom - top <= 140
    assert 400 < (left + right) / 2 < 880
    assert face_recognition.face_locations(frames["empty"]) == []
    assert face_recognition.face_locations(frames["leaving"]) == []  # walking out: back of the head
    # The decoded face still matches the gallery photo.
    known = face_recognition.face_encodings(gallery["eileen_collins"][0])[0]
    seen = face_recognition.face_encodings(frames["counter"], faces)[0]
    assert face_recognition.face_distance([known], seen)[0] < 0.45


def test_make_demo_footage(tmp_path):
    config = init_workspace(tmp_path / "ws", shop_id="demo", timezone="Asia/Kolkata", cameras=["counter", "door"])
    truth = make_demo_footage(config, [date(2024, 5, 1)], seed=1, duration_s=30, visits_per_hour=120, counter_s=(5, 6), size=SMALL)
    assert set(truth["camera"]) == {"counter", "door"} and set(truth["shop_id"]) == {"demo"}
    assert truth.filter(pl.col("camera") == "counter").drop("camera").equals(truth.filter(pl.col("camera") == "door").drop("camera"))
    for camera in ("counter", "door"):
        assert (config.footage_root / camera / "2024-05-01" / "06-00-00.mp4").is_file()
        assert ground_truth_path(config.footage_root, camera, date(2024, 5, 1)).is_file()
