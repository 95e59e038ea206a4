from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.vision_helpers import footage_day_keys
from watershop_dagster.config import ShopConfig
from watershop_dagster.vision.footage import (
    FootageFile,
    discover_footage,
    local_day_bounds_utc,
    parse_plain_path,
    probe_footage,
    scan_footage,
)
from watershop_dagster.vision.layout import FRIGATE_DIR, frigate_path, parse_frigate_path

KOLKATA = ShopConfig(id="shop1", timezone="Asia/Kolkata", cameras=["counter", "door"])


def touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- path parsing


def test_plain_path_is_local_time_converted_to_utc():
    camera, start = parse_plain_path(Path("counter/2024-05-01/09-30-15.mp4"), KOLKATA.tz)
    assert camera == "counter"
    assert start == datetime(2024, 5, 1, 4, 0, 15, tzinfo=UTC)  # IST = UTC+5:30


def test_plain_path_dst_gap_and_fold():
    berlin = ShopConfig(id="b", timezone="Europe/Berlin").tz
    # 2024-03-31 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00)
    with pytest.raises(ValueError, match="does not exist"):
        parse_plain_path(Path("cam/2024-03-31/02-30-00.mp4"), berlin)
    # 2024-10-27 02:30 happens twice: the first (CEST, UTC+2) is taken
    _, start = parse_plain_path(Path("cam/2024-10-27/02-30-00.mp4"), berlin)
    assert start == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "rel, reason",
    [
        ("counter/2024-05-01/lunch.mp4", "HH-MM-SS"),
        ("counter/2024-05-01/25-00-00.mp4", "valid time"),
        ("counter/2024-05-01/12-61-00.mp4", "valid time"),
        ("counter/2024-05-01/12-00-00.avi", "not a video"),
        ("counter/2024-02-30/12-00-00.mp4", "YYYY-MM-DD"),
        ("counter/12-00-00.mp4", "expected"),
    ],
)
def test_plain_path_bad_names(rel, reason):
    with pytest.raises(ValueError, match=reason):
        parse_plain_path(Path(rel), KOLKATA.tz)


def test_frigate_path_is_utc():
    camera, start = parse_frigate_path(Path("2024-05-01/23/counter/59.58.mp4"))
    assert (camera, start) == ("counter", datetime(2024, 5, 1, 23, 59, 58, tzinfo=UTC))


@pytest.mark.parametrize(
    "rel, reason",
    [
        ("2024-05-01/24/counter/00.00.mp4", "hour"),
        ("2024-05-01/7/counter/00.00.mp4", "hour"),
        ("2024-05-01/07/counter/0.00.mp4", "MM.SS"),
        ("2024-05-01/07/counter/60.00.mp4", "MM.SS"),
        ("2024-13-01/07/counter/00.00.mp4", "YYYY-MM-DD"),
    ],
)
def test_frigate_path_bad_names(rel, reason):
    with pytest.raises(ValueError, match=reason):
        parse_frigate_path(Path(rel))


def test_local_day_bounds():
    start, end = local_day_bounds_utc(date(2024, 5, 1), KOLKATA.tz)
    assert start == datetime(2024, 4, 30, 18, 30, tzinfo=UTC)
    assert end == datetime(2024, 5, 1, 18, 30, tzinfo=UTC)


# ---------------------------------------------------------------- discovery


def test_discover_plain_layout(tmp_path):
    good = touch(tmp_path / "counter/2024-05-01/09-00-00.mp4")
    touch(tmp_path / "counter/2024-05-01/23-59-59.mp4")
    touch(tmp_path / "door/2024-05-01/10-00-00.mp4")
    touch(tmp_path / "counter/2024-05-02/00-00-01.mp4")  # next day
    touch(tmp_path / "attic/2024-05-01/10-00-00.mp4")  # not a camera of the shop: ignored
    bad = touch(tmp_path / "counter/2024-05-01/copy of 09-00-00.mp4")
    touch(tmp_path / "counter/2024-05-01/.10-00-00.mp4.tmp")  # hidden: being written
    touch(tmp_path / "counter/May-1/10-00-00.mp4")  # no day: only a full scan reports it

    files, bads = discover_footage(tmp_path, KOLKATA, date(2024, 5, 1))
    assert [(f.camera, f.start_utc.astimezone(KOLKATA.tz).strftime("%H:%M:%S")) for f in files] == [
        ("counter", "09:00:00"),
        ("door", "10:00:00"),
        ("counter", "23:59:59"),
    ]
    assert files[0] == FootageFile(good, "counter", datetime(2024, 5, 1, 3, 30, tzinfo=UTC), "plain")
    assert [b.path for b in bads] == [bad]
    assert "HH-MM-SS" in bads[0].reason

    _, all_bad = scan_footage(tmp_path, KOLKATA)
    assert {b.path.name for b in all_bad} == {"copy of 09-00-00.mp4", "10-00-00.mp4"}
    assert footage_day_keys(tmp_path, KOLKATA) == {date(2024, 5, 1), date(2024, 5, 2)}


def test_discover_frigate_layout_crosses_utc_dates(tmp_path):
    rec = tmp_path / "recordings"
    # local day 2024-05-01 in Kolkata = 2024-04-30 18:30 UTC .. 2024-05-01 18:30 UTC
    touch(rec / "2024-04-30/18/counter/29.59.mp4")  # 23:59:59 IST on Apr 30: excluded
    first = touch(rec / "2024-04-30/18/counter/30.00.mp4")  # 00:00:00 IST on May 1
    touch(rec / "2024-05-01/12/door/00.10.mp4")
    last = touch(rec / "2024-05-01/18/counter/29.50.mp4")  # 23:59:50 IST
    touch(rec / "2024-05-01/18/counter/30.00.mp4")  # May 2 local
    touch(rec / "2024-05-01/12/backyard/00.00.mp4")  # camera of another shop: ignored
    bad = touch(rec / "2024-05-01/12/counter/12:00.mp4")
    touch(rec / "2024-05-03/12/counter/bad.mp4")  # another day's bad file

    files, bads = discover_footage(tmp_path, KOLKATA, date(2024, 5, 1))
    assert [f.path for f in files] == [first, rec / "2024-05-01/12/door/00.10.mp4", last]
    assert all(f.layout == "frigate" for f in files)
    assert files[0].start_utc == datetime(2024, 4, 30, 18, 30, tzinfo=UTC)
    assert [b.path for b in bads] == [bad]
    assert footage_day_keys(tmp_path, KOLKATA) == {date(2024, 4, 30), date(2024, 5, 1), date(2024, 5, 2)}


def test_discover_accepts_recordings_root_and_shop_folder(tmp_path):
    touch(tmp_path / "recordings/2024-05-01/06/counter/00.00.mp4")
    files, _ = discover_footage(tmp_path / "recordings", KOLKATA, date(2024, 5, 1))
    assert len(files) == 1
    touch(tmp_path / "nas/shop1/counter/2024-05-01/08-00-00.mp4")
    touch(tmp_path / "nas/shop2/counter/2024-05-01/08-00-00.mp4")
    files, _ = discover_footage(tmp_path / "nas", KOLKATA, date(2024, 5, 1))
    assert [f.path.parts[-4] for f in files] == ["shop1"]


# ---------------------------------------------------------------- probing


def test_probe_footage(tmp_path, videos_dir):
    source = videos_dir / "short_hamilton_clip.mp4"
    good = tmp_path / "good.mp4"
    shutil.copy(source, good)
    assert probe_footage(good) is None
    assert probe_footage(FootageFile(good, "counter", datetime(2024, 5, 1, tzinfo=UTC))) is None

    data = source.read_bytes()
    assert "zero-byte" in probe_footage(touch(tmp_path / "empty.mp4"))
    assert probe_footage(touch(tmp_path / "half.mp4", data[: len(data) // 2])) is not None
    assert probe_footage(touch(tmp_path / "tail.mp4", data[: len(data) - 5000])) is not None
    assert probe_footage(touch(tmp_path / "garbage.mp4", bytes(range(256)) * 400)) is not None
    assert probe_footage(tmp_path / "missing.mp4").startswith("unreadable")


def test_probe_detects_truncated_faststart_file(tmp_path):
    """An MP4 with its index up front opens fine after truncation; the tail check catches it."""
    from tests.test_vision_decode import write_video

    path = write_video(tmp_path / "fast.mp4", [i / 10 for i in range(60)], faststart=True)
    assert probe_footage(path) is None
    data = path.read_bytes()
    cut = touch(tmp_path / "cut.mp4", data[: int(len(data) * 0.8)])
    reason = probe_footage(cut)
    assert reason is not None and ("truncated" in reason or "corrupt" in reason)


@pytest.mark.parametrize("start", [datetime(2024, 4, 30, 23, 59, 50, tzinfo=UTC),
                                   datetime(2024, 5, 1, 5, 0, 0, tzinfo=ZoneInfo("Asia/Kolkata"))])
def test_frigate_path_round_trips(tmp_path, start):
    """The generator's Frigate paths parse back to the segment's camera and UTC start."""
    path = frigate_path(tmp_path, "cam-1", start)
    assert path.parts[len(tmp_path.parts)] == FRIGATE_DIR
    assert parse_frigate_path(path.relative_to(tmp_path / FRIGATE_DIR)) == ("cam-1", start.astimezone(UTC))
