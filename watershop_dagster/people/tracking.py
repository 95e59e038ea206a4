"""Person tracks from footage: foreground blobs (detector.py) joined over time by ByteTrack.

`track_people` is the entry point: a video file (decoded with vision.decode, so it reads the
same frames with the same timestamps as the face pipeline) or an iterator of frames in, one
`PERSON_OBSERVATIONS` row per confirmed track per processed frame out. `PeopleTracker` is the
same thing frame by frame, for a runner that already decodes frames for faces and wants to feed
them to both pipelines from one decode.

ByteTrack (Roboflow `trackers`, Apache-2.0) does the association: confident blobs (a person's
shape) start and extend tracks, marginal ones (too small, a fragment, a cut from a group) only
extend them. The tracker's live boxes go back to the detector each frame, which keeps the
background from absorbing people who stand still (see detector.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from watershop_dagster.people.detector import (
    MARGINAL_SCORE,
    Detection,
    ForegroundDetector,
    ForegroundSettings,
    PersonDetector,
    YuvSmall,
    yuv_small_from_av,
    yuv_small_from_rgb,
)
from watershop_dagster.people.relink import RelinkSettings, apply_links, duplicate_tracks, relink_tracks, track_ends
from watershop_dagster.people.schema import PERSON_OBSERVATIONS, empty_observations
from watershop_dagster.vision.decode import iter_frames
from watershop_dagster.vision.motion import Box, PersonBox

if TYPE_CHECKING:
    import supervision as sv

#: ByteTrack expresses its lost-track buffer in frames at this reference rate
_BYTETRACK_REFERENCE_FPS = 30.0
#: weight of the newest box-to-box velocity in a track's running velocity (used to predict boxes)
VELOCITY_SMOOTHING = 0.3
#: colour samples of a track's start averaged into its start colour; weight of the newest sample in its end colour
START_COLOUR_SAMPLES = 5
END_COLOUR_SMOOTHING = 0.3
#: colours are sampled on every this-many processed frames (each sample costs ~0.1 ms per box)
COLOUR_SAMPLE_EVERY = 3


@dataclass(frozen=True)
class TrackerSettings:
    lost_track_s: float = 3.0  # a track not matched for this long ends
    min_consecutive_frames: int = 3  # matched this many frames in a row before a track counts
    activation_score: float = 0.7  # detections at least this confident may start a track
    high_score: float = 0.5  # ByteTrack's first-stage (confident) threshold
    min_iou: float = 0.1  # association threshold (blob boxes jitter, people move a lot per frame)
    protect_lost_s: float = 1.5  # a lost track's last box stays protected from the background this long
    min_track_s: float = 1.0  # tracks shorter than this (in time covered) are dropped as noise
    relink: RelinkSettings | None = field(default_factory=RelinkSettings)  # None: tracks as ByteTrack left them


@dataclass(frozen=True)
class PeopleSettings:
    max_fps: float | None = 15.0  # frames processed per second at most (None: every frame)
    foreground: ForegroundSettings = field(default_factory=ForegroundSettings)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    decode_threads: int = 0  # FFmpeg decoder threads (0: FFmpeg decides)


@dataclass
class _LiveBox:
    """A track's last box (small-frame px) and its velocity (px/s), to predict where it is now."""

    box: tuple[float, float, float, float]
    last_seen: float
    velocity: tuple[float, float] = (0.0, 0.0)

    def predict(self, t: float) -> tuple[float, float, float, float]:
        dt = t - self.last_seen
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

    def moved_to(self, box: tuple[float, float, float, float], t: float, smoothing: float) -> _LiveBox:
        dt = t - self.last_seen
        if dt <= 0:
            return _LiveBox(box, t, self.velocity)
        vx = ((box[0] + box[2]) - (self.box[0] + self.box[2])) / 2 / dt
        vy = ((box[1] + box[3]) - (self.box[1] + self.box[3])) / 2 / dt
        a = smoothing
        return _LiveBox(box, t, (a * vx + (1 - a) * self.velocity[0], a * vy + (1 - a) * self.velocity[1]))


@dataclass
class _Colours:
    """A track's mean colour over its first samples and a running mean of its latest ones."""

    first_sum: np.ndarray | None = None
    count: int = 0
    last: tuple[float, ...] | None = None

    def add(self, colour: np.ndarray) -> None:
        if self.count < START_COLOUR_SAMPLES:
            self.first_sum = colour if self.first_sum is None else self.first_sum + colour
            self.count += 1
        a = END_COLOUR_SMOOTHING
        self.last = tuple(colour) if self.last is None else tuple(a * colour + (1 - a) * np.asarray(self.last))

    @property
    def first(self) -> tuple[float, ...] | None:
        return None if self.first_sum is None else tuple(self.first_sum / self.count)


def box_colour(planes: YuvSmall, box: tuple[float, float, float, float], mask: np.ndarray | None = None) -> np.ndarray | None:
    """Mean chroma (U, V) of the upper and the lower half of a box (small-frame px), over its
    foreground pixels when a mask is given: shirt and trousers, which survive lighting changes
    better than brightness. None when a half has no pixels to measure."""
    h, w = planes.y.shape
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    mid = (y1 + y2) // 2
    out = []
    for top, bottom in ((y1, mid), (mid, y2)):
        if bottom <= top or x2 <= x1:
            return None
        u, v = planes.u[top:bottom, x1:x2], planes.v[top:bottom, x1:x2]
        if mask is not None:
            keep = mask[top:bottom, x1:x2].astype(bool)
            if keep.sum() < 4:
                return None
            u, v = u[keep], v[keep]
        out += [float(u.mean()), float(v.mean())]
    return np.array(out)


def _median_step(df: pl.DataFrame) -> float:
    """Median interval (s) between a track's consecutive rows, for streams processed at every frame."""
    steps = df.sort("track_id", "ts").select(pl.col("ts").diff().over("track_id").dt.total_microseconds()).drop_nulls()
    return float(steps.to_series().median()) / 1e6 if steps.height else 1.0 / 15


def _ioa(inner, outer) -> float:
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return w * h / area if w > 0 and h > 0 and area > 0 else 0.0


def _iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def demote_fragments(detections: list[Detection], tracked: list[tuple[float, float, float, float]], min_ioa: float = 0.5) -> list[Detection]:
    """A detection lying mostly inside a tracked person's box while another detection fits that
    box better is a piece of that person (an arm, a gap in the mask): it may extend tracks, not start one."""
    out = list(detections)
    for box in tracked:
        if not out:
            break
        best = max(range(len(out)), key=lambda i: _iou(out[i][:4], box))
        for i, det in enumerate(out):
            if i != best and det.score > MARGINAL_SCORE and _ioa(det[:4], box) >= min_ioa:
                out[i] = det._replace(score=MARGINAL_SCORE)
    return out


class PeopleTracker:
    """Frame-by-frame people tracking for one camera stream (see module docstring).

    Feed frames in time order with `update_av(frame, ts)` (a decoded PyAV frame) or
    `update_rgb(rgb, ts)`; `observations()` returns the PERSON_OBSERVATIONS rows so far.
    """

    def __init__(self, camera: str, settings: PeopleSettings = PeopleSettings(), detector: PersonDetector | None = None):
        self.camera = camera
        self.settings = settings
        self.detector = detector if detector is not None else ForegroundDetector(settings.foreground)
        # imported here: a run that tracks no people (a water shop's day) does not pay ~1.5 s for them
        import supervision
        from trackers import ByteTrackTracker

        self._detections = supervision.Detections
        t = settings.tracker
        self._make_tracker = lambda: ByteTrackTracker(
            lost_track_buffer=max(1, round(t.lost_track_s * _BYTETRACK_REFERENCE_FPS)),
            frame_rate=_BYTETRACK_REFERENCE_FPS,
            track_activation_threshold=t.activation_score,
            minimum_consecutive_frames=t.min_consecutive_frames,
            minimum_iou_threshold=t.min_iou,
            high_conf_det_threshold=t.high_score,
        )
        self._tracker = self._make_tracker()
        self._live: dict[int, _LiveBox] = {}
        self._colours: dict[int, _Colours] = {}
        self._t0: datetime | None = None
        self._rows: dict[str, list] = {name: [] for name in PERSON_OBSERVATIONS.names()}
        self._id_prefix: str | None = None
        self._last_processed: float = -math.inf
        self._first_seen: datetime | None = None
        self.frames_seen = 0
        self.frames_processed = 0
        #: the confirmed tracks of the last processed frame, boxes in full-frame px (where faces are looked for)
        self.people: list[PersonBox] = []

    # -- input -----------------------------------------------------------------------------

    def _due(self, ts: datetime) -> bool:
        self.frames_seen += 1
        max_fps = self.settings.max_fps
        if self._first_seen is None:
            self._first_seen = ts
        t = (ts - self._first_seen).total_seconds()  # the rule of evaluation.processed_times
        if max_fps and t - self._last_processed < 1.0 / max_fps - 1e-6:
            return False
        self._last_processed = t
        return True

    def update_av(self, frame, ts: datetime) -> None:
        if self._due(ts):
            self._update(yuv_small_from_av(frame, self.settings.foreground.width), ts)

    def update_rgb(self, rgb: np.ndarray, ts: datetime) -> None:
        if self._due(ts):
            self._update(yuv_small_from_rgb(rgb, self.settings.foreground.width), ts)

    # -- core ------------------------------------------------------------------------------

    def _update(self, planes: YuvSmall, ts: datetime) -> None:
        if ts.tzinfo is None:
            raise ValueError(f"frame time {ts} must be timezone-aware")
        if self._t0 is None:
            self._t0 = ts
            # track ids are unique within a camera-day as long as one stream does not start twice in the same microsecond
            self._id_prefix = f"{self.camera}-{ts.astimezone(UTC):%Y%m%dT%H%M%S%f}"
        self.frames_processed += 1
        t = (ts - self._t0).total_seconds()
        keep = self.settings.tracker.protect_lost_s
        self._live = {k: v for k, v in self._live.items() if t - v.last_seen <= keep}
        protect = [v.predict(t) for v in self._live.values()]
        detections = demote_fragments(self.detector.detect(planes, t, protect), protect)
        if detections:
            boxes = np.array([d[:4] for d in detections], np.float32)
            scores = np.array([d.score for d in detections], np.float32)
            found = self._detections(xyxy=boxes, confidence=scores)
        else:
            found = self._detections.empty()
            found.confidence = np.zeros(0, np.float32)
        tracked = self._tracker.update(found, timestamp=t)
        h, w = planes.y.shape
        sx, sy = planes.frame_width / w, planes.frame_height / h
        self.people = []
        if self.settings.tracker.relink is not None and self.frames_processed % COLOUR_SAMPLE_EVERY == 0:
            self._sample_colours(planes, tracked)
        for box, track, score in zip(tracked.xyxy, tracked.tracker_id, tracked.confidence if tracked.confidence is not None else [1.0] * len(tracked)):
            if track < 0:
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            known = self._live.get(int(track))
            box_now = (x1, y1, x2, y2)
            self._live[int(track)] = known.moved_to(box_now, t, VELOCITY_SMOOTHING) if known else _LiveBox(box_now, t)
            self.people.append(PersonBox(int(track), Box(math.floor(x1 * sx), math.floor(y1 * sy),
                                                         math.ceil(x2 * sx), math.ceil(y2 * sy))))
            r = self._rows
            r["camera"].append(self.camera)
            r["track_id"].append(f"{self._id_prefix}-{int(track)}")
            r["ts"].append(ts)
            r["x1"].append(x1 * sx)
            r["y1"].append(y1 * sy)
            r["x2"].append(x2 * sx)
            r["y2"].append(y2 * sy)
            r["frame_width"].append(planes.frame_width)
            r["frame_height"].append(planes.frame_height)
            r["identity"].append(None)
            r["score"].append(float(score))

    def _sample_colours(self, planes: YuvSmall, tracked: sv.Detections) -> None:
        """Clothing colours of tracks standing apart from others (an overlap mixes two people)."""
        mask = getattr(self.detector, "last_mask", None)
        boxes = [(int(t), tuple(float(v) for v in b)) for b, t in zip(tracked.xyxy, tracked.tracker_id) if t >= 0]
        for track, box in boxes:
            if any(other != track and _iou(box, b) > 0 for other, b in boxes):
                continue
            colour = box_colour(planes, box, mask)
            if colour is not None:
                self._colours.setdefault(track, _Colours()).add(colour)

    def observations(self) -> pl.DataFrame:
        """The rows so far: duplicate tracks dropped, split tracks re-linked (relink.py), short tracks dropped."""
        if not self._rows["ts"]:
            return empty_observations()
        df = pl.DataFrame(self._rows, schema=PERSON_OBSERVATIONS)
        relink = self.settings.tracker.relink
        if relink is not None:
            df = df.filter(~pl.col("track_id").is_in(list(duplicate_tracks(df, relink))))
            prefix = f"{self._id_prefix}-"
            colours = {f"{prefix}{k}": (c.first, c.last) for k, c in self._colours.items() if c.first is not None}
            links = relink_tracks(track_ends(df, colours), relink)
            step = 1.0 / self.settings.max_fps if self.settings.max_fps else _median_step(df)
            df = apply_links(df, links, step, relink.max_gap_s)
        min_s = self.settings.tracker.min_track_s
        if min_s > 0:
            span = df.group_by("track_id").agg((pl.col("ts").max() - pl.col("ts").min()).dt.total_microseconds().alias("span_us"))
            keep = span.filter(pl.col("span_us") >= round(min_s * 1e6))["track_id"]
            df = df.filter(pl.col("track_id").is_in(keep.implode()))
        return df.sort("ts", "track_id")


def _frames_from_video(path: Path, start_ts: datetime, threads: int) -> Iterator[tuple[datetime, object]]:
    for decoded in iter_frames(path, start_ts, threads=threads):
        yield decoded.ts_utc, decoded.frame


def track_people(
    source: Path | str | Iterable[tuple[datetime, np.ndarray]],
    camera: str,
    start_ts: datetime,
    settings: PeopleSettings = PeopleSettings(),
) -> pl.DataFrame:
    """PERSON_OBSERVATIONS of one continuous stretch of one camera.

    `source` is a video file (its first frame shows `start_ts`, timezone-aware) or an iterable of
    (timestamp, RGB uint8 frame) pairs in time order (then `start_ts` only names the track ids
    when the iterable is empty). Raises vision.decode.FootageDecodeError for a broken file.
    """
    if start_ts.tzinfo is None:
        raise ValueError(f"start_ts {start_ts} must be timezone-aware")
    tracker = PeopleTracker(camera, settings)
    if isinstance(source, (str, Path)):
        for ts, frame in _frames_from_video(Path(source), start_ts, settings.decode_threads):
            tracker.update_av(frame, ts)
    else:
        for ts, rgb in source:
            tracker.update_rgb(rgb, ts)
    return tracker.observations()


def track_people_files(
    files: Iterable[tuple[Path | str, datetime]],
    camera: str,
    settings: PeopleSettings = PeopleSettings(),
) -> pl.DataFrame:
    """PERSON_OBSERVATIONS of consecutive files of one camera (e.g. Frigate's 10 s segments), as
    (path, time of its first frame) in time order: one tracker and one background model run
    across them, so a person keeps one track over segment boundaries and no segment pays the
    background warm-up again. A gap longer than the tracker's lost_track_s ends the tracks.
    """
    tracker = PeopleTracker(camera, settings)
    for path, start_ts in files:
        if start_ts.tzinfo is None:
            raise ValueError(f"start time {start_ts} of {path} must be timezone-aware")
        for ts, frame in _frames_from_video(Path(path), start_ts, settings.decode_threads):
            tracker.update_av(frame, ts)
    return tracker.observations()

