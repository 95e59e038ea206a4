from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from watershop_dagster.vision.decode import FootageDecodeError, iter_frames, video_info


def write_video(
    path: Path,
    times: Sequence[float],
    size: tuple[int, int] = (160, 120),
    frame: Callable[[int, float], np.ndarray] | None = None,
    faststart: bool = False,
    gop: int = 10,
) -> Path:
    """H.264 MP4 with one frame at each time in `times` (seconds; any spacing: variable rate),
    timestamps in milliseconds. `frame(i, t)` gives the RGB image (default: a moving pattern)."""
    width, height = size
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"g": str(gop), "bf": "0", "preset": "ultrafast", "crf": "20"}
        for i, t in enumerate(times):
            if frame is None:
                image = np.zeros((height, width, 3), np.uint8)
                image[:, :, 0] = (np.arange(width)[None, :] + 7 * i) % 256
                image[:, :, 1] = (np.arange(height)[:, None] * 2) % 256
            else:
                image = frame(i, t)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            vf.pts = round(t * 1000)
            vf.time_base = Fraction(1, 1000)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# irregular spacing: 10 fps, a 1.3 s drop-out, then 25 fps, then a 0.45 s stall
VFR_TIMES = [i * 0.1 for i in range(20)] + [3.2 + i * 0.04 for i in range(50)] + [5.65 + i * 0.1 for i in range(20)]


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("vfr") / "vfr.mp4", VFR_TIMES)


def test_timestamps_come_from_pts(vfr_video):
    start = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    frames = list(iter_frames(vfr_video, start))
    assert len(frames) == len(VFR_TIMES)
    assert [round(f.pts_s, 3) for f in frames] == [round(t, 3) for t in VFR_TIMES]
    assert [f.ts_utc for f in frames] == [start + timedelta(milliseconds=round(t * 1000)) for t in VFR_TIMES]
    info = video_info(vfr_video)
    assert (info.width, info.height) == (160, 120)
    assert info.duration_s == pytest.approx(VFR_TIMES[-1], abs=0.15)


def test_slices_partition_the_file(vfr_video):
    cuts = [0.0, 1.05, 3.5, 4.0, 6.0]
    seen = []
    for t0, t1 in zip(cuts, [*cuts[1:], None]):
        part = [f.pts_s for f in iter_frames(vfr_video, t0=t0, t1=t1, preroll_s=0.5) if f.pts_s >= t0]
        assert all(t0 <= t and (t1 is None or t < t1) for t in part)
        seen.extend(part)
    assert [round(t, 3) for t in seen] == [round(t, 3) for t in VFR_TIMES]


def test_preroll_frames_come_before_the_slice(vfr_video):
    frames = list(iter_frames(vfr_video, t0=4.0, t1=4.5, preroll_s=0.3))
    pre = [f.pts_s for f in frames if f.pts_s < 4.0]
    assert pre and min(pre) >= 3.7 - 1e-6
    assert all(f.pts_s < 4.5 for f in frames)


def test_max_rate_keeps_first_frame_of_each_bucket(vfr_video):
    kept = [round(f.pts_s, 3) for f in iter_frames(vfr_video, max_rate=2.0)]
    buckets = [int(t // 0.5) for t in kept]
    assert len(set(buckets)) == len(buckets)
    assert kept[:4] == [0.0, 0.5, 1.0, 1.5]
    # the same frames are picked when the file is read in slices
    sliced = [
        round(f.pts_s, 3)
        for t0, t1 in ((0, 3.3), (3.3, 6.01), (6.01, None))
        for f in iter_frames(vfr_video, t0=t0, t1=t1, max_rate=2.0)
        if f.pts_s >= t0  # earlier ones are the pre-roll
    ]
    assert sliced == kept


def test_frames_convert_cheaply(vfr_video):
    frame = next(iter_frames(vfr_video))
    assert frame.gray_small(80).shape == (60, 80)
    assert frame.rgb().shape == (120, 160, 3)


def test_truncated_file_raises(tmp_path, vfr_video):
    fast = write_video(tmp_path / "fast.mp4", VFR_TIMES, faststart=True)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(FootageDecodeError, match="cut.mp4"):
        list(iter_frames(cut))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01" * 5000)
    with pytest.raises(FootageDecodeError, match="cannot open"):
        list(iter_frames(garbage))


def test_decode_error_survives_pickling():
    """Errors raised in worker processes must arrive intact."""
    import pickle

    err = pickle.loads(pickle.dumps(FootageDecodeError("/x/cam.mp4", "decoding failed", 12.5)))
    assert isinstance(err, FootageDecodeError)
    assert err.path == Path("/x/cam.mp4") and err.at_s == 12.5
    assert str(err) == "/x/cam.mp4: decoding failed at 12.500 s"
