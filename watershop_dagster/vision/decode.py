"""Decode footage into frames with exact wall-clock timestamps.

A frame's time is `start_utc + (pts - stream_start) * time_base`: taken from the frame's own
presentation timestamp, never from a frame counter, so variable frame rates and dropped frames
keep true times. `stream_start` is the stream's start_time (0 for ordinary MP4 files), so
`pts_s` is "seconds since the file's first frame" and the file name's time is that frame's time.

`iter_frames(path, t0=..., t1=...)` decodes only the slice [t0, t1) of a file (seeking to the
keyframe before it), so one long file can be split over worker processes: every frame belongs to
exactly one slice. Decoding errors raise `FootageDecodeError`, and a file that ends early
(truncated) raises too instead of silently yielding fewer frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: a slice ending this much earlier than the stream's declared duration counts as truncated
TRUNCATION_TOLERANCE_S = 1.0


class FootageDecodeError(RuntimeError):
    """The file could not be decoded (corrupt, truncated, unreadable); names the file and time."""

    def __init__(self, path: Path | str, message: str, at_s: float | None = None):
        where = f" at {at_s:.3f} s" if at_s is not None else ""
        super().__init__(f"{path}: {message}{where}")
        self.path = Path(path)
        self.message = message
        self.at_s = at_s

    def __reduce__(self):  # picklable, so it crosses process-pool boundaries intact
        return (type(self), (self.path, self.message, self.at_s))


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration_s: float | None
    start_pts: int
    time_base: Fraction
    average_fps: float | None
    codec: str


@dataclass
class DecodedFrame:
    frame: av.VideoFrame
    pts_s: float  # seconds since the stream's start
    ts_utc: datetime | None  # start_utc + pts_s (None when no start was given)
    sampled: bool = True  # the first frame of its 1/max_rate bucket (always, without max_rate)

    @property
    def width(self) -> int:
        return self.frame.width

    @property
    def height(self) -> int:
        return self.frame.height

    def gray_small(self, width: int) -> np.ndarray:
        """Luma downscaled to `width` px (area average), uint8 — the cheap input for motion."""
        return gray_small(self.frame, width)

    def rgb(self) -> np.ndarray:
        """Full-resolution RGB (H, W, 3) uint8."""
        return self.frame.to_ndarray(format="rgb24")


def gray_small(frame: av.VideoFrame, width: int) -> np.ndarray:
    height = max(1, round(frame.height * width / frame.width))
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"):
        import cv2

        plane = frame.planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
        return cv2.resize(luma, (width, height), interpolation=cv2.INTER_AREA)
    return frame.reformat(width, height, format="gray").to_ndarray()


def _duration_s(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        start = float(container.start_time or 0) / 1_000_000
        return container.duration / 1_000_000 - max(0.0, float((stream.start_time or 0) * stream.time_base) - start)
    return None


def video_info(path: Path | str) -> VideoInfo:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise FootageDecodeError(path, "no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate
            return VideoInfo(
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                duration_s=_duration_s(container, stream),
                start_pts=int(stream.start_time or 0),
                time_base=stream.time_base,
                average_fps=float(rate) if rate else None,
                codec=stream.codec_context.name,
            )
    except av.FFmpegError as exc:
        raise FootageDecodeError(path, f"cannot open: {exc}") from exc


def iter_frames(
    path: Path | str,
    start_utc: datetime | None = None,
    t0: float = 0.0,
    t1: float | None = None,
    *,
    preroll_s: float = 0.0,
    max_rate: float | None = None,
    threads: int = 0,
    strict: bool = True,
    stats: dict | None = None,
    unsampled: bool = False,
) -> Iterator[DecodedFrame]:
    """Frames with pts_s in [t0 - preroll_s, t1), in presentation order.

    Frames before t0 are the pre-roll (e.g. to warm up a motion model); the caller tells them by
    `pts_s < t0`. With `max_rate`, only the first decoded frame of each 1/max_rate-second bucket
    of the file's timeline is yielded (every frame is still decoded: H.264 needs them); buckets
    are anchored at the file's start, so slices of one file pick the same frames as a whole run.
    With `unsampled`, the other frames are yielded too, marked `sampled=False`: one decode then
    feeds both a consumer of the sampled frames (faces) and one of every frame (people).
    `threads` is the decoder's thread count (0: FFmpeg decides). With `strict`, a file that ends
    more than TRUNCATION_TOLERANCE_S before its declared duration raises FootageDecodeError.
    `stats`, if given, gets "decoded": the number of frames decoded (yielded or not).
    """
    path = Path(path)
    if t1 is not None and t1 <= t0:
        return
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise FootageDecodeError(path, f"cannot open: {exc}") from exc
    except OSError as exc:
        raise FootageDecodeError(path, f"unreadable: {exc}") from exc
    try:
        if not container.streams.video:
            raise FootageDecodeError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        time_base = stream.time_base
        start_pts = int(stream.start_time or 0)
        duration = _duration_s(container, stream)
        bucket_width = 1.0 / max_rate if max_rate else None
        first = t0 - preroll_s
        if bucket_width is not None and t0 > 0:
            # start at the bucket holding t0, so a bucket whose first frame lies before t0 is not
            # taken again by this slice's first frame: slices pick exactly the frames a whole run would
            first = min(first, math.floor(t0 / bucket_width + 1e-9) * bucket_width)
        last_bucket = None
        last_pts_s = None

        for attempt_back in (0.0, 10.0, 60.0, math.inf):
            target = first - attempt_back
            if target > 0:
                container.seek(start_pts + int(target / time_base), stream=stream, backward=True, any_frame=False)
            elif attempt_back > 0 or first > 0:
                container.seek(start_pts, stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
            try:
                head = next(frames, None)
            except av.FFmpegError as exc:
                raise FootageDecodeError(path, f"decoding failed: {exc}", first) from exc
            if head is None:
                break
            if head.pts is None:
                raise FootageDecodeError(path, "frame without a timestamp (pts)")
            head_s = float((head.pts - start_pts) * time_base)
            # seeking landed after the slice start (sparse index): seek further back and retry
            if first > 0 and head_s > first + 1e-6 and target > 0:
                continue
            break

        def _all():
            yield head
            yield from frames

        if head is not None:
            try:
                for frame in _all():
                    if stats is not None:
                        stats["decoded"] = stats.get("decoded", 0) + 1
                    if frame.pts is None:
                        raise FootageDecodeError(path, "frame without a timestamp (pts)", last_pts_s)
                    pts_s = float((frame.pts - start_pts) * time_base)
                    if pts_s < first - 1e-9:
                        continue
                    if t1 is not None and pts_s >= t1:
                        last_pts_s = pts_s
                        break
                    last_pts_s = pts_s
                    sampled = True
                    if bucket_width is not None:
                        bucket = math.floor(pts_s / bucket_width + 1e-9)
                        sampled = bucket != last_bucket
                        if not sampled and not unsampled:
                            continue
                        last_bucket = bucket
                    ts = start_utc + timedelta(microseconds=round(pts_s * 1_000_000)) if start_utc else None
                    yield DecodedFrame(frame=frame, pts_s=pts_s, ts_utc=ts, sampled=sampled)
            except av.FFmpegError as exc:
                raise FootageDecodeError(path, f"decoding failed (corrupt or truncated): {exc}", last_pts_s) from exc

        if strict and duration is not None:
            expected_end = duration if t1 is None else min(t1, duration)
            reached = last_pts_s if last_pts_s is not None else -math.inf
            if expected_end > first and reached < expected_end - TRUNCATION_TOLERANCE_S:
                got = "no frame" if last_pts_s is None else f"the last frame at {last_pts_s:.3f} s"
                raise FootageDecodeError(
                    path, f"file ends early (truncated?): {got}, expected frames until {expected_end:.3f} s"
                )
    finally:
        container.close()
