"""Cheap motion detection and the decision which frames (and where) to search for faces.

Motion runs on a small grayscale frame (160 px wide): pixels that changed since the previous
sampled frame, grown into the surrounding pixels that differ from a running background;
brightness-compensated and thresholded. The share of such pixels is the motion score and their
connected blobs, mapped back to full-resolution pixels, are the motion regions.

`FrameSampler` turns motion into face-detector work. It is deterministic (frame times only, no
wall clock) and bounds the cost: no search without motion, except a once-a-second look for faces
already followed (a customer standing still at the counter stays one track), a look every
`lost_face_interval_s` (then less and less often) where a followed face was lost (looking down,
turned away: it may still stand there), and one whole-frame search on a slice's first frame (a slice starts blind: a customer
standing still across its boundary is part of the motion background); at most
`max_fps` searched frames a second, known faces are followed in small windows around their last
position, and the (costly) search of whole motion regions backs off while it keeps finding
nothing or while every moving blob is already explained by a followed face.

On a camera that also tracks people (`plan(..., people=...)`), faces are looked for only where
people are, as Frigate does: the upper part of each tracked person's box (`head_box`), the due ones
merged into few regions, instead of motion regions, lost-face looks and the first frame's search. A person whose face is
followed is not searched again (the follow window looks for the face) until the follow loses it;
a person whose head keeps showing no face (turned away) is searched less and less often
(`HeadWatch`), and a person too small to show a face of min_face_px is not searched at all. A face
no person's box holds could not name a person track anyway (behaviour.identities takes faces in
the upper half of a person box).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

MOTION_WIDTH = 160
#: a lost face's last box overlapping a followed face this much (IoU) is that face, found again
LOST_FACE_SAME_IOU = 0.3


class Box(NamedTuple):
    """Pixel rectangle [x0, x1) × [y0, y1) in full-frame coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def pad(self, px: float) -> Box:
        return Box(int(math.floor(self.x0 - px)), int(math.floor(self.y0 - px)), int(math.ceil(self.x1 + px)), int(math.ceil(self.y1 + px)))

    def clip(self, width: int, height: int) -> Box:
        return Box(max(0, self.x0), max(0, self.y0), min(width, self.x1), min(height, self.y1))

    def intersection(self, other: Box) -> int:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0

    def union(self, other: Box) -> Box:
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        return inter / (self.area + other.area - inter) if inter else 0.0


class PersonBox(NamedTuple):
    """A tracked person in the frame: the track's key (stable while it lives) and its box (full-frame px)."""

    key: Hashable
    box: Box


class SearchRegion(NamedTuple):
    """Where to run the face detector, and the smallest face (px) it must find there."""

    box: Box
    min_face_px: float
    # "motion" | "track" | "lost" (where a followed face was lost) | "frame" (large motion) |
    # "start" (a slice's first frame) | "head" (a tracked person's, people cameras)
    kind: str = "motion"


@dataclass(frozen=True)
class MotionResult:
    score: float  # share of changed pixels, 0..1
    boxes: tuple[Box, ...]  # motion regions in full-frame pixels, largest first


def merge_boxes(boxes: Sequence[Box], gap: int = 0) -> list[Box]:
    """Union boxes that overlap (or are within `gap` px) until none do."""
    merged = [Box(*b) for b in boxes]
    changed = True
    while changed and len(merged) > 1:
        changed = False
        out: list[Box] = []
        for box in merged:
            for i, other in enumerate(out):
                if box.pad(gap).intersection(other) > 0:
                    out[i] = other.union(box)
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return sorted(merged, key=lambda b: (-b.area, b.y0, b.x0))


class MotionDetector:
    """Motion on small grayscale frames: what changed since the previous frame, grown into what
    differs from a running background around it (see module docstring).

    update(small, t) takes the frame (uint8, `small_size` = (w, h)) and its time in seconds. A
    pixel is moving when it differs from the previous frame; the changed blob around moving pixels
    (differing from the background, which follows the scene with time constant
    `background_tau_s`) makes the region, so a slowly moving person is covered whole while the
    "ghost" a person leaves at a spot where they stood is not. Differences are brightness
    compensated (auto exposure is not motion).
    """

    def __init__(
        self,
        frame_size: tuple[int, int],
        small_size: tuple[int, int] | None = None,
        pixel_threshold: float = 14.0,
        background_tau_s: float = 3.0,
        grow_px: int = 4,
        min_blob_px: int = 4,
    ):
        self.frame_w, self.frame_h = frame_size
        if small_size is None:
            small_size = (MOTION_WIDTH, max(1, round(self.frame_h * MOTION_WIDTH / self.frame_w)))
        self.small_w, self.small_h = small_size
        self.sx = self.frame_w / self.small_w
        self.sy = self.frame_h / self.small_h
        self.pixel_threshold = pixel_threshold
        self.background_tau_s = background_tau_s
        self.min_blob_px = min_blob_px
        self._background: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._last_t: float | None = None
        self._kernel = np.ones((3, 3), np.uint8)
        self._grow = np.ones((2 * grow_px + 1, 2 * grow_px + 1), np.uint8)

    def reset(self) -> None:
        self._background = None
        self._previous = None
        self._last_t = None

    def _changed(self, current: np.ndarray, reference: np.ndarray) -> np.ndarray:
        delta = current - reference
        delta -= float(np.median(delta))  # global brightness change (auto exposure, clouds)
        return np.abs(delta) > self.pixel_threshold

    def update(self, small: np.ndarray, t: float) -> MotionResult:
        if small.shape[:2] != (self.small_h, self.small_w):
            small = cv2.resize(small, (self.small_w, self.small_h), interpolation=cv2.INTER_AREA)
        current = cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)
        if self._background is None or self._previous is None:
            self._background = current.copy()
            self._previous = current
            self._last_t = t
            return MotionResult(0.0, ())
        moving = self._changed(current, self._previous)
        changed = self._changed(current, self._background)
        dt = max(0.0, t - (self._last_t if self._last_t is not None else t))
        alpha = 1.0 - math.exp(-dt / self.background_tau_s) if dt > 0 else 0.0
        self._background += np.float32(alpha) * (current - self._background)
        self._previous = current
        self._last_t = t

        if not moving.any():
            return MotionResult(0.0, ())
        near = cv2.dilate(moving.astype(np.uint8), self._grow).astype(bool)
        mask = moving | (changed & near)
        score = float(mask.mean())
        mask8 = cv2.dilate(mask.astype(np.uint8), self._kernel, iterations=1)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask8, connectivity=8)
        boxes = []
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if area < self.min_blob_px:
                continue
            boxes.append(
                Box(
                    int(math.floor(x * self.sx)),
                    int(math.floor(y * self.sy)),
                    int(math.ceil((x + w) * self.sx)),
                    int(math.ceil((y + h) * self.sy)),
                ).clip(self.frame_w, self.frame_h)
            )
        return MotionResult(score, tuple(merge_boxes(boxes)))


def motion_score(previous: np.ndarray, current: np.ndarray, pixel_threshold: float = 14.0) -> float:
    """Share of pixels that changed between two small grayscale frames (stateless helper)."""
    delta = cv2.GaussianBlur(current, (3, 3), 0).astype(np.float32) - cv2.GaussianBlur(previous, (3, 3), 0).astype(np.float32)
    delta -= float(np.median(delta))
    return float((np.abs(delta) > pixel_threshold).mean())


# --------------------------------------------------------------------------------------------
# which frames to search, and where


@dataclass
class SamplerSettings:
    max_fps: float = 5.0  # searched frames per second, at most
    motion_threshold: float = 0.004  # motion score that wakes the detector
    min_face_px: float = 40.0
    # whole motion regions: at max_fps while nothing is tracked; this slower rate once faces are
    # followed (only for blobs a followed face does not explain) ...
    tracked_motion_interval_s: float = 1.0
    # ... and backing off (doubling the interval up to idle_motion_interval_s) after this many
    # searches in a row found no face
    empty_searches_before_backoff: int = 5
    idle_motion_interval_s: float = 1.0
    # followed faces: search a window of (1 + 2 * track_window) face widths around the last box,
    # for faces down to track_min_face_ratio × the last size, every follow_interval_s
    track_window: float = 0.75
    track_min_face_ratio: float = 0.8
    follow_interval_s: float = 0.4
    still_follow_interval_s: float = 1.0  # ... and this when nothing moves
    track_keep_s: float = 3.0  # stop following a face not seen for this long
    # pad motion blobs (faces sit above moving hands/bodies): max(this × min_face, 15% of size)
    motion_pad_faces: float = 1.5
    # a blob inside a followed face's body box (face box grown 1.5 face widths sideways, 1 up and 6
    # down) is explained by that person
    body_explained_share: float = 0.8
    # so much of the frame changed at once (lighting, camera shake): search the whole frame for
    # large faces only
    large_motion_share: float = 0.5
    large_motion_min_face_px: float = 80.0
    # a followed face not seen for track_keep_s is looked for where it was last seen (moving or
    # not), first after lost_face_interval_s, then doubling the interval up to
    # lost_face_max_interval_s, so a customer who looked down at the counter is found again well
    # within the visit gap instead of splitting the visit; for lost_face_window_s after it was last
    # seen (the default visit gap: a face lost longer ago starts a new visit anyway)
    lost_face_interval_s: float = 2.0
    lost_face_max_interval_s: float = 16.0
    lost_face_window_s: float = 60.0
    # people cameras: a person's head is the upper head_share of the box (the share identities
    # take faces from), grown by head_pad_faces × min_face each way so a face at its edge is whole
    head_share: float = 0.5
    head_pad_faces: float = 0.5
    # a person's shoulders are ~2.5-3 face widths across: a box narrower than this many min faces
    # holds no face the detector could find (a person far away), so it is not searched
    head_min_person_faces: float = 2.0
    # a head without a face is searched at max_fps, after empty_searches_before_backoff empty
    # searches ever less often (doubling) down to once every idle_head_interval_s
    idle_head_interval_s: float = 1.0


def head_box(person: Box, frame_size: tuple[int, int], settings: SamplerSettings) -> Box:
    """Where a tracked person's face can be: the upper `head_share` of the box, padded by
    `head_pad_faces` × min_face_px on every side and clipped to the frame."""
    pad = settings.head_pad_faces * settings.min_face_px
    top_part = Box(person.x0, person.y0, person.x1, person.y0 + math.ceil(settings.head_share * person.height))
    return top_part.pad(pad).clip(*frame_size)


def head_interval(empty_searches: int, settings: SamplerSettings) -> float:
    """Seconds until a head that showed no face in its last `empty_searches` searches is searched again."""
    base = 1.0 / settings.max_fps
    extra = empty_searches - settings.empty_searches_before_backoff
    if extra < 0:
        return base
    return max(base, min(settings.idle_head_interval_s, base * 2 ** (extra + 1)))


def holds(box: Box, point: tuple[float, float]) -> bool:
    return box.x0 <= point[0] < box.x1 and box.y0 <= point[1] < box.y1


@dataclass
class HeadWatch:
    """When a tracked person's head is next due for a face search, and how many searches in a row found none."""

    due_t: float = -math.inf
    empty: int = 0

    def searched(self, t: float, found: bool, settings: SamplerSettings) -> None:
        """After a search of the head at `t` that found a face in it, or not."""
        self.empty = 0 if found else self.empty + 1
        self.due_t = t + head_interval(self.empty, settings)


@dataclass
class SearchPlan:
    t: float
    regions: list[SearchRegion]
    motion_search: bool  # whole motion regions searched (vs. only followed faces)
    heads: dict[Hashable, Box] = field(default_factory=dict)  # people cameras: the persons' heads searched


@dataclass
class FrameSampler:
    """Deterministic frame/region selection for the face detector (see module docstring).

    Call `plan(t, motion, tracked)` for each motion-scored frame in time order, with the boxes of
    faces currently followed (last seen within `track_keep_s`); if it returns a plan, run the
    detector on its regions and call `report(plan, n_faces)`.
    """

    frame_size: tuple[int, int]
    settings: SamplerSettings = field(default_factory=SamplerSettings)
    _last_search: float = field(default=-math.inf, init=False)
    _last_motion_search: float = field(default=-math.inf, init=False)
    _last_follow: float = field(default=-math.inf, init=False)
    _started: bool = field(default=False, init=False)
    _lost_due: dict[Hashable, tuple[float, float]] = field(default_factory=dict, init=False)  # lost face -> (next look, interval)
    _empty_streak: int = field(default=0, init=False)
    _followed_all: bool = field(default=False, init=False)
    _heads: dict[Hashable, HeadWatch] = field(default_factory=dict, init=False)
    _found: list[tuple[float, Box]] = field(default_factory=list, init=False)  # faces found since the last follow search

    def motion_interval(self, tracking: bool) -> float:
        s = self.settings
        base = 1.0 / s.max_fps
        if tracking:
            base = max(base, s.tracked_motion_interval_s)
        extra = self._empty_streak - s.empty_searches_before_backoff
        if extra >= 0:
            base = max(base, min(s.idle_motion_interval_s, (1.0 / s.max_fps) * 2 ** (extra + 1)))
        return base

    def plan(
        self,
        t: float,
        motion: MotionResult,
        tracked: Sequence[Box] = (),
        people: Sequence[PersonBox] | None = None,
        lost: Sequence[tuple[Hashable, Box]] = (),
    ) -> SearchPlan | None:
        """`people`: the persons tracked in this frame on a camera that tracks people (None: it does
        not); then faces are looked for in their heads instead of in motion regions. `lost`: (key,
        last box) of faces followed within lost_face_window_s but no longer (not on people cameras)."""
        if people is not None:
            return self._plan_people(t, motion, tracked, people)
        s = self.settings
        w, h = self.frame_size
        moving = motion.score >= s.motion_threshold and bool(motion.boxes)
        if motion.score < s.motion_threshold:
            self._empty_streak = 0  # scene at rest: next motion gets the full rate again
        if not self._started:
            self._started = True
            self._last_search = t
            return SearchPlan(t, [SearchRegion(Box(0, 0, w, h), s.min_face_px, "start")], False)
        lost = [(key, box) for key, box in lost if not any(box.iou(face) >= LOST_FACE_SAME_IOU for face in tracked)]
        if not moving and not tracked and not lost:
            return None
        if t - self._last_search < 1.0 / s.max_fps - 1e-6:
            return None

        regions = self._follow_regions(t, tracked, moving) + self._lost_regions(t, lost)
        bodies = []
        for face in tracked:
            fw = max(face.width, face.height)
            bodies.append(Box(face.x0 - int(1.5 * fw), face.y0 - fw, face.x1 + int(1.5 * fw), face.y1 + 6 * fw))

        # the slower rate only while every followed face was found again at the last search:
        # a face that got lost may have walked off into another motion blob
        if not tracked:
            self._followed_all = False
        following = bool(tracked) and self._followed_all
        motion_due = moving and t - self._last_motion_search >= self.motion_interval(following) - 1e-6
        motion_regions: list[SearchRegion] = []
        if motion_due:
            if motion.score >= s.large_motion_share:
                motion_regions.append(SearchRegion(Box(0, 0, w, h), max(s.min_face_px, s.large_motion_min_face_px), "frame"))
            else:
                blobs = []
                for blob in motion.boxes:
                    if any(blob.intersection(body) >= s.body_explained_share * blob.area for body in bodies):
                        continue
                    pad = max(s.motion_pad_faces * s.min_face_px, 0.15 * max(blob.width, blob.height))
                    blobs.append(blob.pad(pad).clip(w, h))
                for box in merge_boxes(blobs):
                    if box.width >= s.min_face_px and box.height >= s.min_face_px:
                        motion_regions.append(SearchRegion(box, s.min_face_px, "motion"))
        if not regions and not motion_regions:
            return None
        self._last_search = t
        if any(r.kind == "track" for r in regions):
            self._last_follow = t
        if motion_regions:
            self._last_motion_search = t
        return SearchPlan(t, regions + motion_regions, bool(motion_regions))

    def _lost_regions(self, t: float, lost: Sequence[tuple[Hashable, Box]]) -> list[SearchRegion]:
        """Windows around the lost faces whose look is due."""
        s = self.settings
        regions = []
        for key, face in lost:
            due_t, interval = self._lost_due.get(key, (t + s.lost_face_interval_s, s.lost_face_interval_s))
            if t >= due_t - 1e-6:
                regions.append(self._face_window(face, "lost"))
                interval = min(2 * interval, s.lost_face_max_interval_s)
                due_t = t + interval
            self._lost_due[key] = (due_t, interval)
        return regions

    def _follow_regions(self, t: float, tracked: Sequence[Box], moving: bool) -> list[SearchRegion]:
        """Windows around the followed faces, when a follow is due. A followed face is looked for
        even when the scene is still (a customer standing at the counter), only less often: that
        keeps one track, and so a few embeddings, per person."""
        s = self.settings
        follow_every = s.follow_interval_s if moving else s.still_follow_interval_s
        if t - self._last_follow < max(1.0 / s.max_fps, follow_every) - 1e-6:
            return []
        return [self._face_window(face, "track") for face in tracked]

    def _face_window(self, face: Box, kind: str) -> SearchRegion:
        """The window a known face is looked for in: track_window face widths around its last box,
        for faces down to track_min_face_ratio × its size."""
        s = self.settings
        size = max(face.width, face.height)
        return SearchRegion(face.pad(size * s.track_window).clip(*self.frame_size),
                            max(s.min_face_px, s.track_min_face_ratio * size), kind)

    def _plan_people(self, t: float, motion: MotionResult, tracked: Sequence[Box], people: Sequence[PersonBox]) -> SearchPlan | None:
        s = self.settings
        if t - self._last_search < 1.0 / s.max_fps - 1e-6:
            return None
        moving = motion.score >= s.motion_threshold and bool(motion.boxes)
        regions = self._follow_regions(t, tracked, moving)
        self._heads = {p.key: self._heads.get(p.key, HeadWatch()) for p in people}
        # a face found again at the last follow search (or just found in a head) is being followed:
        # its person's head is left to the follow window; a face the follow lost is not
        fresh = max(s.follow_interval_s, s.still_follow_interval_s) + 1.0 / s.max_fps
        followed = [box.center for found_t, box in self._found if t - found_t <= fresh + 1e-6]
        heads: dict[Hashable, Box] = {}
        for person in people:
            if person.box.width < s.head_min_person_faces * s.min_face_px:
                continue
            head = head_box(person.box, self.frame_size, s)
            if any(holds(head, centre) for centre in followed):
                continue
            if t >= self._heads[person.key].due_t - 1e-6:
                heads[person.key] = head
        head_regions = [SearchRegion(box, s.min_face_px, "head") for box in merge_boxes(list(heads.values()))]
        if not regions and not head_regions:
            return None
        self._last_search = t
        if regions:
            self._last_follow = t
        return SearchPlan(t, regions + head_regions, False, heads)

    def report(self, plan: SearchPlan, n_faces: int, faces: Sequence[Box] = ()) -> None:
        """After searching `plan`: the number of faces found and, for a people plan, their boxes
        (each head learns whether it showed one; a face found is followed from then on)."""
        s = self.settings
        if any(r.kind == "track" for r in plan.regions):
            self._found = []
        self._found += [(plan.t, box) for box in faces]
        for key, head in plan.heads.items():
            watch = self._heads.get(key)
            if watch is not None:
                watch.searched(plan.t, any(holds(head, box.center) for box in faces), s)
        n_followed = sum(1 for r in plan.regions if r.kind == "track")
        if n_followed:
            self._followed_all = n_faces >= n_followed
        if n_faces > 0:
            self._empty_streak = 0
        elif plan.motion_search:
            self._empty_streak += 1
