"""Falling items in one shelf zone: a small foreground blob whose bottom edge follows free fall.

Per frame (every frame: a fall lasts a few hundred milliseconds) the zone's bounding box of the
Y, U and V planes are cut out and downscaled to `FallTuning.work_width` px, compared against a running
background (luma, and chroma's distance from grey, times the frame's global gain, so lamps and
flicker do not count) and masked by the zone polygon. An idle shelf costs that resize, one difference and one count.

When anything is foreground, connected components become blobs; small blobs are tracked frame to
frame by their bottom edge (at release the item and the hole it leaves are one blob whose bottom
is the item's). A track that stops descending (landing, or a bounce) or vanishes (it left the zone)
is judged: its descending run must fit y(t) = y0 + v0·t + ½·g·t² with g near the zone's gravity
in pixels/s², fall mostly straight down, span enough of the zone, and never be attached to an arm
(a large blob that moved within the last second, the zone's edge at release, a person's box; a large
blob standing still is the ghost a shopper leaves in the background, or a parked cart). Release is the fitted parabola's
vertex (speed zero), landing the first frame at the bottom. Rejected by construction: hands and
arms (large or edge-connected), swinging signs (a map of where loose blobs kept moving lately,
read as it was 0.5-1 s before, vetoes releases there; a map of where they turned back sideways
vetoes any descent running through it, e.g. down a sign's cord from its pivot; tracks that
oscillate), carts and people
(large, sideways), bounces (a "fall" starting where another just landed), light changes
(gain-compensated; a change over much of the zone resets the background and every track).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from watershop_dagster.shelf.settings import FallTuning

#: a blob within this many work px of a large blob belongs to it (a hand holding an item)
ATTACH_PX = 3
#: a large blob whose box stayed put (within STILL_PX work px) this long is no arm: the ghost a shopper
#: who stood at the shelf leaves in the background for seconds after leaving, or a parked cart
STILL_S = 1.0
STILL_PX = 2
#: the gain is estimated on every n-th pixel of the region
GAIN_STRIDE = 5
#: a spot that was foreground this many frame-equivalents lately is busy (a sign, a screen): no release there
BUSY_ACTIVITY = 5.0
BUSY_MARGIN_PX = 4
MOVED_PX = 1.0  # a tracked blob that moved more than this per frame marks the activity map
#: a loose blob whose sideways motion turns back (each way faster than this, work px per frame) marks the swing map
SWING_TURN_PX = 0.5
#: this many recent turns where a descent runs: something swings there (a sign on its pivot), no fall
SWING_TURNS = 2.0
#: a fall starting this soon after another one's landing, this near it sideways (work px) and no higher
#: above it than this share of that fall's drop (a bounce's apex is restitution² of it: 0.16 at 0.4) is its bounce
BOUNCE_S = 1.5
BOUNCE_PX = 12.0
BOUNCE_HEIGHT_SHARE = 0.5
#: a fall released this close in time to another one, as near it sideways as a bounce, is the same item
SAME_RELEASE_S = 0.25
CLOSE_KERNEL = np.ones((3, 3), np.uint8)
#: a fall's first blob smaller than this share of its median size is the item only partly seen
PARTIAL_SHARE = 0.5
ACTIVITY_DECAY_S = 0.5  # the activity map decays in steps this long


class YuvPlanes(NamedTuple):
    """A frame's planes: luma at full resolution, chroma at half (4:2:0)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class ShelfRegion:
    """A shelf zone cut out of the frame: its box in frame px and its polygon mask in work px."""

    camera: str
    zone: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame px
    work_size: tuple[int, int]  # width, height of the downscaled region
    mask: np.ndarray  # bool (h, w): inside the polygon
    gravity_px_s2: float  # g in frame px/s²

    @property
    def scale(self) -> float:
        """Work px per frame px."""
        return self.work_size[0] / (self.box[2] - self.box[0])

    @property
    def factor(self) -> int:
        """Frame px per work px (a whole number)."""
        return (self.box[2] - self.box[0]) // self.work_size[0]

    @classmethod
    def from_polygon(cls, camera: str, zone: str, polygon: np.ndarray, frame_size: tuple[int, int],
                     gravity_px_s2: float, work_width: int) -> ShelfRegion:  # fmt: skip
        """`polygon` relative (n, 2) as in zones.config; `gravity_px_s2` in frame px/s²."""
        width, height = frame_size
        points = polygon * np.array([width, height])
        x0, y0 = np.floor(points.min(axis=0)).astype(int)
        x1, y1 = np.ceil(points.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        # a whole-number downscale factor: the area mean is then a box blur read every factor-th pixel
        factor = max(1, round((x1 - x0) / work_width))
        x1, y1 = x0 + max(factor, (x1 - x0) // factor * factor), y0 + max(factor, (y1 - y0) // factor * factor)
        ww, wh = (x1 - x0) // factor, (y1 - y0) // factor
        mask = np.zeros((wh, ww), np.uint8)
        work_points = (points - [x0, y0]) * [ww / (x1 - x0), wh / (y1 - y0)]
        cv2.fillPoly(mask, [np.round(work_points).astype(np.int32)], 1)
        return cls(camera, zone, (int(x0), int(y0), int(x1), int(y1)), (ww, wh), mask.astype(bool), gravity_px_s2)


@dataclass(frozen=True)
class FallEvent:
    """One falling item; times in seconds of the footage's clock, sizes in frame px."""

    camera: str
    zone: str
    release_s: float
    landing_s: float
    drop_height_px: float
    blob_area_px: float
    confidence: float
    landed: bool  # stopped inside the zone (False: left it)
    x_px: float  # where it landed, frame px
    y_px: float


class FallDetector(Protocol):
    """What a caller needs from a falling-item detector (one per shelf zone)."""

    def update(self, t: float, planes: YuvPlanes, people: Sequence[tuple[float, float, float, float]] = ()) -> list[FallEvent]:
        """Feed one frame (its time in s, its YUV 4:2:0 planes, people's boxes in frame px); events judged now.

        A fall is judged once its item lands or leaves the zone; one still under way when the footage
        ends is not told by it (the next file, warmed up on this one's tail, sees it whole)."""


@dataclass(frozen=True)
class _Blob:
    x: float  # centre x, work px
    bottom: float  # bottom edge y, work px
    area: int
    height: int
    edge: bool
    attached: bool
    busy: float  # recent foreground activity where the blob is
    swing: float  # recent sideways turns of loose blobs where the blob is
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in work px


class _ToldFall(NamedTuple):
    """A fall just told, remembered to recognise its bounce and a second part of the same item."""

    landing_t: float
    landing_x: float  # work px
    landing_y: float
    drop: float
    release_t: float
    release_x: float


@dataclass
class _Track:
    ts: list[float] = field(default_factory=list)
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)  # bottom edge
    tops: list[float] = field(default_factory=list)  # top edge
    areas: list[int] = field(default_factory=list)
    edge: list[bool] = field(default_factory=list)
    attached: list[bool] = field(default_factory=list)
    missed: int = 0
    judged: bool = False  # a fall was judged on it (emitted or not): its bounces are no new falls
    reversals: int = 0
    busy: list[float] = field(default_factory=list)
    swing: list[float] = field(default_factory=list)

    def add(self, t: float, blob: _Blob) -> None:
        if len(self.ys) >= 2:
            before, now = self.ys[-1] - self.ys[-2], blob.bottom - self.ys[-1]
            if before * now < 0 and abs(before) > 0.5 and abs(now) > 0.5:
                self.reversals += 1
        self.ts.append(t)
        self.xs.append(blob.x)
        self.ys.append(blob.bottom)
        self.tops.append(float(blob.box[1]))
        self.areas.append(blob.area)
        self.edge.append(blob.edge)
        self.attached.append(blob.attached)
        self.busy.append(blob.busy)
        self.swing.append(blob.swing)
        self.missed = 0

    def predict(self, t: float, g: float) -> tuple[float, float]:
        if len(self.ts) < 2:
            return self.xs[-1], self.ys[-1]
        dt = t - self.ts[-1]
        step = self.ts[-1] - self.ts[-2] or dt
        vx = (self.xs[-1] - self.xs[-2]) / step
        vy = (self.ys[-1] - self.ys[-2]) / step
        accel = g if vy > 0 else 0.0
        return self.xs[-1] + vx * dt, self.ys[-1] + vy * dt + 0.5 * accel * dt * dt


class ShelfFallDetector:
    """The falling-item detector of one shelf zone (see module docstring)."""

    def __init__(self, region: ShelfRegion, tuning: FallTuning = FallTuning()) -> None:
        self.region = region
        self.tuning = tuning
        self.g_work = region.gravity_px_s2 * region.scale
        self._background: np.ndarray | None = None
        self._t_start: float | None = None
        self._t_last: float | None = None
        self._tracks: list[_Track] = []
        self.rejected: Counter[str] = Counter()  # judged tracks that were no fall, by reason
        self._told: list[_ToldFall] = []  # falls told within the last BOUNCE_S
        self._big: list[tuple[tuple[int, int, int, int], float]] = []  # last frame's large blobs: (box, still since)
        w, h = region.work_size
        self._activity = np.zeros((h, w), np.float32)
        self._activity_decayed = 0.0
        self._activity_recent = self._activity.copy()
        self._activity_old = self._activity.copy()
        self._swings = np.zeros((h, w), np.float32)
        self._swings_recent = self._swings.copy()
        self._swings_old = self._swings.copy()
        self._mask_u8 = region.mask.astype(np.uint8) * 255
        self._mask_area = int(region.mask.sum())
        self._gain_index = np.flatnonzero(region.mask[::GAIN_STRIDE, ::GAIN_STRIDE].ravel())
        kernel = np.ones((2 * tuning.edge_px + 1, 2 * tuning.edge_px + 1), np.uint8)
        padded = cv2.copyMakeBorder(self._mask_u8, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        inner = cv2.erode(padded, kernel)[1:-1, 1:-1].astype(bool)
        self._edge_index = np.flatnonzero(region.mask & ~inner)  # the band along the zone's edge, flat
        self._max_area = tuning.max_area_share * self._mask_area
        self._max_height = tuning.max_height_share * h
        self._min_drop = tuning.min_drop_share * h
        self._label_type = cv2.CV_16U if w * h < 2 ** 16 else cv2.CV_32S  # 16-bit labels: ~2.5x faster components

    # -- per frame ---------------------------------------------------------------------------

    def _small(self, planes: YuvPlanes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The region's Y, U and V planes (uint8) at the work size."""
        x0, y0, x1, y1 = self.region.box
        size = self.region.work_size
        f = self.region.factor
        # the area mean of each f x f block, as a box blur read at the blocks' centres (~3x cheaper than
        # OpenCV's area resize at f = 3); the blur never reads outside the box at those pixels
        y = np.ascontiguousarray(cv2.blur(planes.y[y0:y1, x0:x1], (f, f))[f // 2::f, f // 2::f]) if f > 1 else planes.y[y0:y1, x0:x1]
        u = cv2.resize(planes.u[y0 // 2:(y1 + 1) // 2, x0 // 2:(x1 + 1) // 2], size, interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(planes.v[y0 // 2:(y1 + 1) // 2, x0 // 2:(x1 + 1) // 2], size, interpolation=cv2.INTER_LINEAR)
        return y, u, v

    def _gain(self, luma: np.ndarray) -> float:
        """The frame's brightness over the background's: the median ratio on a sparse grid."""
        sample = luma[::GAIN_STRIDE, ::GAIN_STRIDE].ravel()[self._gain_index]
        if not sample.size:
            return 1.0
        ratio = sample / (self._background[0][::GAIN_STRIDE, ::GAIN_STRIDE].ravel()[self._gain_index] + 1.0)
        middle = ratio.size // 2
        low, high = np.partition(ratio, (middle - 1, middle) if ratio.size > 1 else middle)[[middle - 1, middle]] if ratio.size > 1 else (ratio[0], ratio[0])
        return float((low + high) / 2 if ratio.size % 2 == 0 else high)

    def _foreground(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray], gain: float) -> np.ndarray:
        """uint8 0/255 mask of foreground inside the polygon: luma or chroma off the gain-scaled background.

        Brighter light scales R, G and B, so luma and chroma's distance from grey (128) both scale by
        the gain: unscaled, the chroma of coloured products flagged hundreds of pixels in a flicker."""
        bg_y, bg_u, bg_v = self._background
        tuning = self.tuning
        gain32, grey = np.float32(gain), np.float32(128.0 * (1.0 - gain))
        luma = cv2.compare(cv2.absdiff(planes[0].astype(np.float32), bg_y * gain32), tuning.luma_threshold, cv2.CMP_GT)
        chroma = cv2.max(cv2.absdiff(planes[1].astype(np.float32), bg_u * gain32 + grey),
                         cv2.absdiff(planes[2].astype(np.float32), bg_v * gain32 + grey))
        chroma = cv2.compare(chroma, tuning.chroma_threshold, cv2.CMP_GT)
        return cv2.bitwise_and(cv2.bitwise_or(luma, chroma), self._mask_u8)

    def update(self, t: float, planes: YuvPlanes, people: Sequence[tuple[float, float, float, float]] = ()) -> list[FallEvent]:
        tuning = self.tuning
        small = self._small(planes)
        if self._background is None:
            self._background = [plane.astype(np.float32) for plane in small]
            self._t_start, self._t_last, self._activity_decayed = t, t, t
            return []
        dt = max(1e-3, t - self._t_last)
        self._t_last = t
        fg_u8 = self._foreground(small, self._gain(small[0]))  # 255 where foreground
        changed = cv2.countNonZero(fg_u8)
        if changed > tuning.global_change_share * self._mask_area:
            self._background = [plane.astype(np.float32) for plane in small]  # the light changed: start over
            self._tracks = []
            return []
        if changed:  # join an item's fragments (it passes products of its own colour)
            fg_u8 = cv2.bitwise_and(cv2.morphologyEx(fg_u8, cv2.MORPH_CLOSE, CLOSE_KERNEL), self._mask_u8)
        if t - self._activity_decayed >= ACTIVITY_DECAY_S:
            decay = math.exp(-(t - self._activity_decayed) / tuning.activity_tau_s)
            self._activity *= decay
            self._swings *= decay
            self._activity_decayed = t
            # busy spots are judged on the maps as they were 0.5-1 s ago: an item's own first frames do not count
            self._activity_old, self._activity_recent = self._activity_recent, self._activity.copy()
            self._swings_old, self._swings_recent = self._swings_recent, self._swings.copy()
        still = cv2.bitwise_not(fg_u8) if changed else None
        for plane, bg in zip(small, self._background):
            cv2.accumulateWeighted(plane, bg, min(1.0, dt / tuning.background_tau_s), still)
            if changed:
                cv2.accumulateWeighted(plane, bg, min(1.0, dt / tuning.foreground_tau_s), fg_u8)
        if not changed:
            self._big = []
            if not self._tracks:
                return []
        events = self._track(t, self._blobs(t, fg_u8, people) if changed else [])
        # warming up: learn, do not tell (nor later of a fall released then, before the maps knew the signs)
        return [event for event in events if event.release_s - self._t_start >= tuning.warmup_s]

    def _moving_big(self, t: float, boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
        """The large blobs that moved within STILL_S (arms, people, carts); the still ones are remembered."""
        now = []
        for box in boxes:
            since = next((since for old, since in self._big if all(abs(a - b) <= STILL_PX for a, b in zip(box, old))), t)
            now.append((box, since))
        self._big = now
        return [box for box, since in now if t - since < STILL_S]

    def _blobs(self, t: float, fg: np.ndarray, people: Sequence[tuple[float, float, float, float]]) -> list[_Blob]:
        tuning = self.tuning
        count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8, ltype=self._label_type)
        on_edge = np.zeros(count, bool)
        on_edge[labels.ravel()[self._edge_index]] = True
        areas, heights = stats[1:, cv2.CC_STAT_AREA], stats[1:, cv2.CC_STAT_HEIGHT]
        is_big = (areas > self._max_area) | (heights > self._max_height)
        big = self._moving_big(t, [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:][is_big].tolist()])
        small = np.flatnonzero(~is_big & (areas >= tuning.min_area_px)) + 1
        people_work = [self._to_work(box) for box in people]
        blobs = []
        for label, (x, y, w, h, area) in zip(small.tolist(), stats[small].tolist()):
            box = (x, y, x + w, y + h)
            edge = bool(on_edge[label])
            attached = any(_near(box, other, ATTACH_PX) for other in big) or any(_near(box, p, 0) for p in people_work)
            around = (slice(max(0, y - BUSY_MARGIN_PX), y + h + BUSY_MARGIN_PX), slice(max(0, x - BUSY_MARGIN_PX), x + w + BUSY_MARGIN_PX))
            busy, swing = float(self._activity_old[around].max()), float(self._swings_old[around].max())
            blobs.append(_Blob(x + w / 2, float(y + h), area, h, edge, attached, busy, swing, box))
        return blobs

    def _to_work(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0 = self.region.box[:2]
        s = self.region.scale
        return ((box[0] - x0) * s, (box[1] - y0) * s, (box[2] - x0) * s, (box[3] - y0) * s)

    def _track(self, t: float, blobs: list[_Blob]) -> list[FallEvent]:
        events: list[FallEvent] = []
        pairs = []
        for i, track in enumerate(self._tracks):
            px, py = track.predict(t, self.g_work)
            # a young track's speed is unknown: it may have started falling from rest since
            young = self.g_work * (t - track.ts[0]) * (t - track.ts[-1]) if len(track.ts) < 3 else 0.0
            speed = abs(py - track.ys[-1]) + young
            for j, blob in enumerate(blobs):
                dx, dy = blob.x - px, blob.bottom - py
                if abs(dx) <= 5.0 + 0.5 * blob.height and -4.0 - 0.3 * speed <= dy <= 6.0 + 0.6 * speed + 0.5 * blob.height:
                    pairs.append((math.hypot(dx, dy), i, j))
        used_tracks, used_blobs = set(), set()
        for _, i, j in sorted(pairs):
            if i in used_tracks or j in used_blobs:
                continue
            used_tracks.add(i)
            used_blobs.add(j)
            track, blob = self._tracks[i], blobs[j]
            if not blob.attached:
                x0, y0, x1, y1 = blob.box  # loose moving blobs leave a trace: where signs swing
                if math.hypot(blob.x - track.xs[-1], blob.bottom - track.ys[-1]) > MOVED_PX:
                    self._activity[y0:y1, x0:x1] += 1.0
                if len(track.xs) >= 2 and _turns(track.xs[-2], track.xs[-1], blob.x, SWING_TURN_PX):
                    self._swings[y0:y1, x0:x1] += 1.0
            track.add(t, blob)
        alive = []
        for i, track in enumerate(self._tracks):
            if i not in used_tracks:
                track.missed += 1
                if track.missed > self.tuning.max_gap_frames:
                    if not track.judged:
                        events += self._judge(track, landed=False)
                    continue
            elif not track.judged and self._stopped(track):
                track.judged = True
                events += self._judge(track, landed=True)
            alive.append(track)
        for j, blob in enumerate(blobs):
            if j not in used_blobs:
                track = _Track()
                track.add(t, blob)
                alive.append(track)
        self._tracks = alive
        return events

    def _stopped(self, track: _Track) -> bool:
        """Descended a fall's worth, and now stands still or bounces back up."""
        ys = track.ys
        if len(ys) < self.tuning.min_points + 1 or ys[-1] - ys[-2] >= self.tuning.stop_px:
            return False
        return ys[-2] - ys[_descent_start(ys, len(ys) - 2)] >= self._min_drop  # no copy: tracks of a sign live long

    # -- judging a track ---------------------------------------------------------------------

    def _judge(self, track: _Track, landed: bool) -> list[FallEvent]:
        """The track's fall as an event, or nothing when it is no free fall of a loose item."""
        tuning = self.tuning
        track.judged = True
        lowest = int(np.argmax(track.ys))
        end = next(k for k in range(len(track.ys)) if track.ys[k] >= track.ys[lowest] - 0.5)  # first frame at the bottom
        start = _descent_start(track.ys, end)
        if end - start + 1 > tuning.min_points and track.areas[start] < PARTIAL_SHARE * np.median(track.areas[start:end + 1]):
            start += 1  # the item only partly parted from products of its colour: that bottom edge is not the item's
        n = end - start + 1
        if n < tuning.min_points or track.reversals >= 2:
            return self._reject("short" if n < tuning.min_points else "oscillates", track)
        ts = np.asarray(track.ts[start:end + 1]) - track.ts[start]
        ys = np.asarray(track.ys[start:end + 1])
        xs = np.asarray(track.xs[start:end + 1])
        drop = ys[-1] - ys[0]
        if drop < self._min_drop or abs(xs[-1] - xs[0]) > tuning.max_sideways * drop:
            return self._reject("small drop" if drop < self._min_drop else "sideways", track)
        half = max(1, n // 2)
        if any(track.attached[start:end + 1]) or any(track.edge[start:start + half]):
            return self._reject("attached" if any(track.attached[start:end + 1]) else "edge", track)
        if track.busy[start] > BUSY_ACTIVITY:
            return self._reject("busy", track)
        if max(track.swing[start:end + 1]) >= SWING_TURNS:  # runs into a swinging sign, e.g. down its cord from the pivot
            return self._reject("swinging", track)
        t_first = track.ts[start]
        if any(_bounces(t_first - f.landing_t, xs[0] - f.landing_x, f.landing_y - ys[0], f.drop) for f in self._told):
            return self._reject("bounce", track)
        fit = n
        if n > tuning.min_points and ys[-1] - ys[-2] < ys[-2] - ys[-3]:
            fit = n - 1  # the impact frame: the item stopped part way through it
        c2, c1, c0 = np.polyfit(ts[:fit], ys[:fit], 2)
        g_fit = 2 * c2
        ratio = g_fit / self.g_work
        rms = float(np.sqrt(np.mean((np.polyval((c2, c1, c0), ts[:fit]) - ys[:fit]) ** 2)))
        tolerance = max(tuning.max_fit_rms_px, 0.08 * drop)
        if not tuning.gravity_ratio[0] <= ratio <= tuning.gravity_ratio[1] or rms > tolerance:
            return self._reject("no free fall", track)
        vertex = -c1 / (2 * c2)
        release_rel = min(0.0, max(-0.5, vertex))
        release_s = track.ts[start] + release_rel
        if any(abs(release_s - f.release_t) < SAME_RELEASE_S and abs(xs[0] - f.release_x) < BOUNCE_PX for f in self._told):
            return self._reject("same item", track)  # a fragment of a fall already told (a tall item seen in two parts)
        y_release = float(np.polyval((c2, c1, c0), release_rel)) if vertex < 0 else float(ys[0])
        fit_term = math.exp(-rms / tolerance)
        g_term = max(0.0, 1.0 - abs(math.log(ratio)) / math.log(2.5))
        n_term = min(1.0, n / 6)
        confidence = round(0.4 * fit_term + 0.4 * g_term + 0.2 * n_term, 3)
        s = self.region.scale
        x0, y0 = self.region.box[:2]
        area = float(np.median(track.areas[start:end + 1])) / (s * s)
        self._told = [fall for fall in self._told if track.ts[end] - fall.landing_t < BOUNCE_S]
        self._told.append(_ToldFall(track.ts[end], float(xs[-1]), float(ys[-1]), float(drop), release_s, float(xs[0])))
        return [FallEvent(
            camera=self.region.camera, zone=self.region.zone,
            release_s=release_s, landing_s=track.ts[end],
            drop_height_px=round((ys[-1] - y_release) / s, 1), blob_area_px=round(area, 1),
            confidence=confidence, landed=landed,
            x_px=round(x0 + xs[-1] / s, 1), y_px=round(y0 + ys[-1] / s, 1),
        )]  # fmt: skip


    def _reject(self, reason: str, track: _Track) -> list[FallEvent]:
        self.rejected[reason] += 1
        return []


def _descent_start(ys: Sequence[float], end: int) -> int:
    """Index where the descending run of `ys` ending at `end` begins: its strictly descending frames
    and the frame at rest before them (a long still stretch before is not part of the fall)."""
    k = end
    while k > 0 and ys[k - 1] < ys[k]:
        k -= 1
    if k > 0 and ys[k - 1] <= ys[k] + 0.5:
        k -= 1
    return k


def _bounces(after_s: float, sideways: float, above: float, landed_drop: float) -> bool:
    """A fall starting `after_s` after a landing, `sideways` of it and `above` it (work px), is that
    item's bounce: soon after, near it, and below the apex a bounce of that drop can reach."""
    return (after_s < BOUNCE_S and abs(sideways) < BOUNCE_PX
            and -BOUNCE_PX < above <= max(BOUNCE_PX, BOUNCE_HEIGHT_SHARE * landed_drop))


def _turns(a: float, b: float, c: float, min_step: float) -> bool:
    """a -> b -> c goes one way then back, each step longer than `min_step`."""
    return (b - a) * (c - b) < 0 and abs(b - a) > min_step and abs(c - b) > min_step


def _near(a: tuple[float, float, float, float], b: tuple[float, float, float, float], margin: float) -> bool:
    return a[0] <= b[2] + margin and b[0] <= a[2] + margin and a[1] <= b[3] + margin and b[1] <= a[3] + margin
