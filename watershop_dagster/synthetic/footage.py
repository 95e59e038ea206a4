"""Scripted synthetic shop footage (H.264 MP4) with ground truth.

The scene is a fixed CCTV view of a small water shop: back wall with the door on the left and
shelves of water cans on the right, a tiled floor, the main counter across the foreground and a
side desk on the right. The camera sits behind the counter, so every person is seen over it.

A customer visit: the person appears in the doorway (`entry_utc`), walks towards the camera to
the counter, growing from a ~35 px to a 90-130 px face (`counter_start`), stands there with small
head motion (`counter_end`), then turns round and walks back out - showing the back of the head,
so the face is visible only from entry to counter_end - and vanishes in the doorway
(`exit_utc`). An optional staff member walks in to the side desk and stays there for long
stretches (ground-truth role ``staff``), leaving for breaks.

Bodies are flat drawn shapes; the head is a face photo from the gallery (see `gallery.py`)
blended in with a feathered elliptical mask. Rendering is a pure function of the frame time, so
files, Frigate segments and parallel chunks of the same footage agree frame for frame. Frames
with nobody in view reuse one pre-converted background frame; x264 turns them into skip frames.

Layouts written by `write_day`:

* plain: ``<root>/<camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4``, one continuous file, local shop time
* frigate: ``<root>/recordings/<YYYY-MM-DD>/<HH>/<camera>/<MM.SS>.mp4``, UTC, short segments

Ground truth: ``<root>/ground_truth/<camera>/<YYYY-MM-DD>.csv`` (local date of the footage) with
`GT_COLUMNS`, times ISO-8601 UTC with milliseconds. Every file is written to a temp name not
ending in .mp4/.csv and renamed into place.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np
import polars as pl

from watershop_dagster.synthetic.gallery import (
    FACE_BOX_PX,
    Gallery,
    crop_size,
    default_gallery,
    face_box_in_crop,
    load_gallery,
)
from watershop_dagster.vision.layout import frigate_path

log = logging.getLogger(__name__)

ROLE_CUSTOMER = "customer"
ROLE_STAFF = "staff"
GT_COLUMNS = ("person", "role", "entry_utc", "exit_utc", "counter_start_utc", "counter_end_utc")
GT_SCHEMA = {
    "person": pl.String,
    "role": pl.String,
    **{column: pl.Datetime("us", "UTC") for column in GT_COLUMNS[2:]},
}
Layout = Literal["plain", "frigate"]

DEFAULT_SIZE = (1280, 720)
DEFAULT_FPS = 15.0
# Scene coordinates are designed at 1280x720 and scaled to the output size.
_BASE_W, _BASE_H = 1280, 720


# --------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True)
class Visit:
    """One person's time in view: walk in, stand at the counter (or staff desk), walk out."""

    person: str
    role: str
    entry_utc: datetime
    exit_utc: datetime
    counter_start: datetime
    counter_end: datetime


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"datetime {moment} must be timezone-aware")
    return moment.astimezone(UTC)


def _ms(seconds: float) -> timedelta:
    return timedelta(milliseconds=round(seconds * 1000))


def _derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from ints and strings (Python's hash() is salted per process)."""
    words = [p % 2**64 if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> 1)


def plan_visits(
    people: Sequence[str],
    start: datetime,
    duration_s: float,
    visits_per_hour: float,
    seed: int,
    staff: str | None = None,
    *,
    counter_s: tuple[float, float] = (30.0, 180.0),
    walk_s: tuple[float, float] = (4.0, 7.0),
    min_gap_s: float = 2.0,
) -> list[Visit]:
    """Deterministic visits inside [start, start + duration_s), sorted by entry time.

    Customers (everyone in `people` but `staff`) never overlap one another: each enters at least
    `min_gap_s` after the previous one left; round(visits_per_hour * hours) visits are spread
    with random gaps, fewer when they do not fit. The same person may come back (returning
    customers) but not twice in a row when there is a choice. The optional staff member stays at
    the side desk for long stretches (30-70% of the footage, 2-60 min) with breaks and overlaps
    customers. Times are whole milliseconds.
    """
    start = _utc(start)
    if duration_s <= 0:
        raise ValueError("duration_s must be positive")
    lo_counter, hi_counter = counter_s
    lo_walk, hi_walk = walk_s
    if not 0 < lo_counter <= hi_counter or not 0 < lo_walk <= hi_walk:
        raise ValueError("counter_s and walk_s must be (low, high) with 0 < low <= high")
    visits: list[Visit] = []

    def add(person: str, role: str, entry: float, walk_in: float, stay: float, walk_out: float) -> float:
        visits.append(
            Visit(
                person=person,
                role=role,
                entry_utc=start + _ms(entry),
                counter_start=start + _ms(entry + walk_in),
                counter_end=start + _ms(entry + walk_in + stay),
                exit_utc=start + _ms(entry + walk_in + stay + walk_out),
            )
        )
        return entry + walk_in + stay + walk_out

    if staff is not None:
        rng = np.random.default_rng([seed, 1])
        t = rng.uniform(5.0, max(5.0, min(60.0, 0.05 * duration_s)))
        while True:
            walk_in, walk_out = rng.uniform(lo_walk, hi_walk, 2)
            stay = float(np.clip(rng.uniform(0.3, 0.7) * duration_s, 120.0, 3600.0))
            stay = min(stay, duration_s - 1.0 - t - walk_in - walk_out)
            if stay < min(30.0, 0.2 * duration_s):
                break
            t = add(staff, ROLE_STAFF, t, walk_in, stay, walk_out)
            t += float(np.clip(rng.uniform(0.05, 0.15) * duration_s, 60.0, 900.0))

    customers = sorted(set(people) - {staff})
    count = round(max(0.0, visits_per_hour) * duration_s / 3600.0) if customers else 0
    if count:
        rng = np.random.default_rng([seed, 2])
        parts = [(rng.uniform(lo_walk, hi_walk), rng.uniform(lo_counter, hi_counter), rng.uniform(lo_walk, hi_walk)) for _ in range(count)]
        who: list[str] = []
        for _ in range(count):
            pool = [p for p in customers if not who or p != who[-1]] or customers
            who.append(pool[rng.integers(len(pool))])
        gaps = rng.dirichlet(np.ones(count + 1))
        margin = 1.0
        while parts:
            free = duration_s - 2 * margin - sum(map(sum, parts)) - (len(parts) - 1) * min_gap_s
            if free >= 0:
                break
            parts.pop()
        if parts:
            gaps = gaps[: len(parts) + 1] / gaps[: len(parts) + 1].sum() * free
            t = margin + gaps[0]
            for index, (walk_in, stay, walk_out) in enumerate(parts):
                t = add(who[index], ROLE_CUSTOMER, t, walk_in, stay, walk_out) + min_gap_s + gaps[index + 1]
    visits.sort(key=lambda v: (v.entry_utc, v.person))
    return visits


def ground_truth_frame(plan: Iterable[Visit]) -> pl.DataFrame:
    """The plan as a ground-truth DataFrame (`GT_COLUMNS`, UTC datetimes)."""
    rows = [
        {
            "person": v.person,
            "role": v.role,
            "entry_utc": _utc(v.entry_utc),
            "exit_utc": _utc(v.exit_utc),
            "counter_start_utc": _utc(v.counter_start),
            "counter_end_utc": _utc(v.counter_end),
        }
        for v in plan
    ]
    return pl.DataFrame(rows, schema=GT_SCHEMA, orient="row") if rows else pl.DataFrame(schema=GT_SCHEMA)


def visits_from_frame(df: pl.DataFrame) -> list[Visit]:
    return [
        Visit(
            person=row["person"],
            role=row["role"],
            entry_utc=row["entry_utc"],
            exit_utc=row["exit_utc"],
            counter_start=row["counter_start_utc"],
            counter_end=row["counter_end_utc"],
        )
        for row in df.iter_rows(named=True)
    ]


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_ground_truth(df: pl.DataFrame, path: Path) -> Path:
    """Write ground truth as CSV with ISO-8601 UTC times (e.g. 2024-05-01T00:31:02.250Z), atomically."""
    path = Path(path)
    out = df.select(
        pl.col("person"),
        pl.col("role"),
        *(pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ") for c in GT_COLUMNS[2:]),
    )
    tmp = _atomic_target(path)
    try:
        out.write_csv(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_ground_truth(path: Path) -> pl.DataFrame:
    df = pl.read_csv(path, schema={c: pl.String for c in GT_COLUMNS})
    return df.with_columns(pl.col(c).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC") for c in GT_COLUMNS[2:])


# --------------------------------------------------------------------------------------------
# Scene


def _color(rng: np.random.Generator, base: tuple[int, int, int], spread: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)


def _draw_shop(size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(background RGB, foreground mask): the static shop; the mask (uint8 0/255) marks the counter and desk pixels that hide people."""
    width, height = size
    sx, sy = width / _BASE_W, height / _BASE_H
    rng = np.random.default_rng([seed, 7])

    def P(x: float, y: float) -> tuple[int, int]:
        return round(x * sx), round(y * sy)

    def poly(img: np.ndarray, points: list[tuple[float, float]], color) -> None:
        cv2.fillPoly(img, [np.array([P(x, y) for x, y in points], np.int32)], color, lineType=cv2.LINE_AA)

    def rect(img: np.ndarray, x0, y0, x1, y1, color, thickness=-1) -> None:
        cv2.rectangle(img, P(x0, y0), P(x1, y1), color, thickness, lineType=cv2.LINE_AA)

    img = np.zeros((height, width, 3), np.uint8)
    floor_y = 330
    # Back wall with a soft vertical gradient.
    wall = np.array(_color(rng, (214, 204, 178), 18), np.float32)
    ramp = np.linspace(0.9, 1.04, round(floor_y * sy), dtype=np.float32)[:, None, None]
    img[: round(floor_y * sy)] = np.clip(wall * ramp, 0, 255).astype(np.uint8)
    rect(img, 0, floor_y - 14, _BASE_W, floor_y, _color(rng, (150, 130, 105), 15))  # skirting board
    # Floor tiles converging to a vanishing point above the frame.
    floor = _color(rng, (150, 148, 140), 15)
    rect(img, 0, floor_y, _BASE_W, _BASE_H, floor)
    grout = tuple(max(0, c - 28) for c in floor)
    vx, vy = 640, -15
    for k in range(-12, 13):
        xb = 640 + k * 150
        t = (floor_y - vy) / (_BASE_H - vy)
        cv2.line(img, P(vx + (xb - vx) * t, floor_y), P(xb, _BASE_H), grout, max(1, round(2 * sy)), cv2.LINE_AA)
    depth = 0.0
    while True:
        depth += 1.0
        y = vy + (floor_y - vy) * (1 + 0.45 * depth)
        if y >= _BASE_H:
            break
        cv2.line(img, P(0, y), P(_BASE_W, y), grout, max(1, round(2 * sy)), cv2.LINE_AA)
    # Door (open, dark doorway) on the left of the back wall.
    frame_col = _color(rng, (120, 82, 50), 15)
    rect(img, 100, 30, 270, floor_y, frame_col)
    rect(img, 112, 42, 258, floor_y, (48, 52, 58))
    poly(img, [(112, 42), (60, 20), (60, floor_y + 30), (112, floor_y)], _color(rng, (150, 110, 72), 15))  # door leaf
    cv2.circle(img, P(72, 190), max(2, round(5 * sy)), (200, 190, 120), -1, cv2.LINE_AA)
    # Sign board.
    board = _color(rng, (30, 90, 170), 20)
    rect(img, 360, 50, 700, 125, board)
    cv2.putText(img, "PURE WATER", P(385, 103), cv2.FONT_HERSHEY_DUPLEX, 1.45 * sy, (245, 245, 245), max(1, round(2 * sy)), cv2.LINE_AA)
    # Shelves with 20 L cans and bottles on the right of the back wall.
    wood = _color(rng, (140, 100, 62), 15)
    rect(img, 770, 40, 1240, floor_y - 10, tuple(max(0, c - 45) for c in wood))
    for y in (125, 210, floor_y - 16):
        rect(img, 770, y, 1240, y + 10, wood)
        x = 785 + rng.integers(0, 20)
        while x < 1210:
            if rng.random() < 0.55:  # 20 L can
                w, h = 52, 72
                rect(img, x, y - h, x + w, y - 2, (70, 140, 215))
                rect(img, x + 16, y - h - 9, x + 36, y - h, (30, 60, 150))
                rect(img, x + 6, y - h + 22, x + w - 6, y - h + 38, (235, 240, 245))
                x += w + 8 + rng.integers(0, 10)
            else:  # a few bottles
                for _ in range(rng.integers(2, 5)):
                    rect(img, x, y - 46, x + 14, y - 2, (150, 200, 235))
                    rect(img, x + 4, y - 54, x + 10, y - 46, (40, 90, 200))
                    x += 18
                x += 10
    # Foreground: main counter (customers stand behind it) and the staff's side desk.
    fg = np.zeros((height, width), np.uint8)
    top = _color(rng, (196, 170, 130), 15)
    front = _color(rng, (128, 92, 60), 15)
    for mask_value, target in ((None, img), (255, fg)):
        c_top = top if mask_value is None else 255
        c_front = front if mask_value is None else 255
        poly(target, [(300, 560), (990, 560), (1010, 592), (280, 592)], c_top)
        rect(target, 280, 592, 1010, _BASE_H, c_front)
        poly(target, [(1050, 505), (_BASE_W, 505), (_BASE_W, 532), (1030, 532)], c_top)
        rect(target, 1030, 532, _BASE_W, _BASE_H, c_front)
        rect(target, 880, 505, 965, 562, (55, 58, 62) if mask_value is None else 255)  # POS terminal
        rect(target, 330, 470, 392, 560, (70, 140, 215) if mask_value is None else 255)  # a can on the counter
        rect(target, 350, 458, 372, 470, (30, 60, 150) if mask_value is None else 255)
    for y in (625, 665):
        cv2.line(img, P(280, y), P(1010, y), tuple(max(0, c - 25) for c in front), max(1, round(2 * sy)), cv2.LINE_AA)
    rect(img, 893, 515, 952, 540, (120, 200, 150))  # terminal screen
    return img, np.where(fg > 127, 255, 0).astype(np.uint8)


def _ellipse_alpha() -> np.ndarray:
    """Feathered elliptical alpha (float32, 0..1) for a gallery crop: face, hair and a bit of neck."""
    width, height = crop_size()
    top, right, bottom, left = face_box_in_crop()
    cx, cy = (left + right) / 2, (top + bottom) / 2 - 0.15 * FACE_BOX_PX
    alpha = np.zeros((height, width), np.float32)
    axes = (round(0.75 * FACE_BOX_PX), round(min(cy, height - cy) - 4))
    cv2.ellipse(alpha, (round(cx), round(cy)), axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(alpha, (0, 0), FACE_BOX_PX / 40)


@dataclass
class _Actor:
    visit: Visit
    role: str
    t_entry: float
    t_counter: float
    t_leave: float
    t_exit: float
    crop: np.ndarray
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    face_px: float  # face box height at the counter / desk, in output pixels
    spot: tuple[float, float]  # head centre at the counter / desk, base coordinates
    phases: np.ndarray
    key: int


@dataclass
class _Pose:
    x: float  # head centre, output pixels
    y: float
    h: float  # face box size, output pixels
    facing: bool
    walk_phase: float | None


class ShopScene:
    """Renders frame `i` of a plan as an RGB array; a pure function of the frame time."""

    DOOR = (186.0, 0.0)  # head x at the door; y follows from the face size
    COUNTER = (640.0, 300.0)
    DESK = (1150.0, 270.0)

    def __init__(
        self,
        plan: Sequence[Visit],
        gallery: Gallery,
        start_utc: datetime,
        fps: float = DEFAULT_FPS,
        size: tuple[int, int] = DEFAULT_SIZE,
        seed: int = 0,
        *,
        sensor_noise: float = 0.0,
        osd_tz: ZoneInfo | None = None,
    ) -> None:
        self.start_utc = _utc(start_utc)
        self.fps = float(fps)
        self.width, self.height = size
        if self.width % 2 or self.height % 2:
            raise ValueError(f"frame size {size} must be even for yuv420p")
        self.sx, self.sy = self.width / _BASE_W, self.height / _BASE_H
        self.background, self.fg_mask = _draw_shop(size, seed)
        self.sensor_noise = float(sensor_noise)
        self.osd_tz = osd_tz
        self._alpha = _ellipse_alpha()
        self._cache: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._noise: list[np.ndarray] = []
        if self.sensor_noise > 0:
            noise_rng = np.random.default_rng([seed, 11])
            self._noise = [noise_rng.normal(0, self.sensor_noise, (self.height, self.width, 1)).astype(np.int16) for _ in range(8)]
        missing = sorted({v.person for v in plan} - set(gallery))
        if missing:
            raise KeyError(f"people in the plan missing from the gallery: {missing}")
        self.actors = [self._actor(index, visit, gallery, seed) for index, visit in enumerate(plan)]

    def _actor(self, index: int, visit: Visit, gallery: Gallery, seed: int) -> _Actor:
        person_rng = np.random.default_rng(_derive_seed(visit.person))  # stable look per person
        rng = np.random.default_rng([seed, 3, index])
        crops = gallery[visit.person]
        crop = crops[int(rng.integers(len(crops)))]
        top, right, bottom, left = face_box_in_crop()
        inner = crop[top + FACE_BOX_PX // 4 : bottom - FACE_BOX_PX // 4, left + FACE_BOX_PX // 4 : right - FACE_BOX_PX // 4]
        skin = tuple(int(c) for c in np.median(inner.reshape(-1, 3), axis=0))
        hair_band = crop[: max(4, top // 2), left:right]
        hair = tuple(int(c) for c in np.median(hair_band.reshape(-1, 3), axis=0) * 0.6)
        shirt = tuple(int(c) for c in person_rng.integers(30, 230, 3))
        pants = tuple(int(c) for c in person_rng.integers(20, 90, 3))
        base_px = 90.0 + 40.0 * person_rng.random()
        if visit.role == ROLE_STAFF:
            spot = self.DESK
            face_px = base_px * 0.85
        else:
            spot = (self.COUNTER[0] + rng.uniform(-70, 70), self.COUNTER[1] + rng.uniform(-12, 12))
            face_px = base_px
        offset = lambda moment: (_utc(moment) - self.start_utc).total_seconds()  # noqa: E731
        return _Actor(
            visit=visit,
            role=visit.role,
            t_entry=offset(visit.entry_utc),
            t_counter=offset(visit.counter_start),
            t_leave=offset(visit.counter_end),
            t_exit=offset(visit.exit_utc),
            crop=crop,
            skin=skin,
            hair=hair,
            shirt=shirt,
            pants=pants,
            face_px=face_px * self.sy,
            spot=spot,
            phases=rng.uniform(0, 2 * np.pi, 6),
            key=index,
        )

    # -- geometry ----------------------------------------------------------------------------

    def frame_time(self, index: int) -> float:
        return index / self.fps

    def present(self, t: float) -> list[_Actor]:
        return [a for a in self.actors if a.t_entry <= t < a.t_exit]

    def _walk(self, actor: _Actor, u: float, t: float, facing: bool) -> _Pose:
        u = u * u * (3 - 2 * u)  # ease in and out
        h_door = actor.face_px * 0.33
        h = h_door + (actor.face_px - h_door) * u
        door_y = 330 * self.sy - 6.3 * h_door  # head centre when the feet stand in the doorway
        x0, y0 = self.DOOR[0] * self.sx, door_y
        x1, y1 = actor.spot[0] * self.sx, actor.spot[1] * self.sy
        phase = 2 * math.pi * 1.7 * t + actor.phases[0]
        bob = 0.05 * h * abs(math.sin(phase))
        return _Pose(x0 + (x1 - x0) * u, y0 + (y1 - y0) * u - bob, h, facing, phase)

    def pose(self, actor: _Actor, t: float) -> _Pose:
        if t < actor.t_counter:
            u = (t - actor.t_entry) / max(1e-6, actor.t_counter - actor.t_entry)
            return self._walk(actor, min(max(u, 0.0), 1.0), t, True)
        if t >= actor.t_leave:
            u = (t - actor.t_leave) / max(1e-6, actor.t_exit - actor.t_leave)
            return self._walk(actor, 1.0 - min(max(u, 0.0), 1.0), t, False)
        p = actor.phases
        h = actor.face_px
        dx = h * (0.035 * math.sin(2 * math.pi * t / 3.1 + p[1]) + 0.02 * math.sin(2 * math.pi * t / 1.7 + p[2]))
        dy = h * (0.02 * math.sin(2 * math.pi * t / 2.3 + p[3]) + 0.01 * math.sin(2 * math.pi * t / 0.9 + p[4]))
        # No size change at the counter: a head that keeps rescaling costs x264 2x the bits.
        return _Pose(actor.spot[0] * self.sx + dx, actor.spot[1] * self.sy + dy, h, True, None)

    # -- drawing -----------------------------------------------------------------------------

    def _scaled_head(self, actor: _Actor, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (actor.key, max(8, round(h)))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        scale = key[1] / FACE_BOX_PX
        width, height = crop_size()
        dsize = (max(2, round(width * scale)), max(2, round(height * scale)))
        rgb = cv2.resize(actor.crop, dsize, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self._alpha, dsize, interpolation=cv2.INTER_AREA)
        hit = self._cache[key] = (rgb, alpha, np.ascontiguousarray(1.0 - alpha))
        if len(self._cache) > 512:
            self._cache.popitem(last=False)
        return hit

    def _draw_person(self, img: np.ndarray, actor: _Actor, pose: _Pose) -> tuple[int, int, int, int]:
        """Draw body and head; returns the bounding box (x0, y0, x1, y1) touched."""
        x, y, h = pose.x, pose.y, pose.h
        P = lambda dx, dy: (round(x + dx * h), round(y + dy * h))  # noqa: E731
        thick = lambda k: max(1, round(k * h))  # noqa: E731
        swing = math.sin(pose.walk_phase) if pose.walk_phase is not None else 0.0
        # Legs (hidden by the counter at the counter; visible while walking).
        for side in (-1, 1):
            cv2.line(img, P(side * 0.35, 3.5), P(side * 0.35 + side * swing * 0.45, 6.2), actor.pants, thick(0.5), cv2.LINE_AA)
        # Torso: shoulders to hips.
        torso = np.array([P(-1.15, 1.05), P(1.15, 1.05), P(0.95, 3.7), P(-0.95, 3.7)], np.int32)
        cv2.fillPoly(img, [torso], actor.shirt, cv2.LINE_AA)
        for side in (-1, 1):
            cv2.circle(img, P(side * 0.9, 1.3), thick(0.3), actor.shirt, -1, cv2.LINE_AA)
            cv2.line(img, P(side * 1.1, 1.3), P(side * (1.25 + 0.05 * swing), 3.3 - side * 0.25 * swing), actor.shirt, thick(0.42), cv2.LINE_AA)
            cv2.circle(img, P(side * (1.25 + 0.05 * swing), 3.45 - side * 0.25 * swing), thick(0.18), actor.skin, -1, cv2.LINE_AA)
        cv2.rectangle(img, P(-0.22, 0.35), P(0.22, 1.15), actor.skin, -1)  # neck
        box = (math.floor(x - 1.8 * h) - 2, math.floor(y - 1.25 * h) - 2, math.ceil(x + 1.8 * h) + 2, math.ceil(y + 6.8 * h) + 2)
        if not pose.facing:  # walking away: back of the head
            cv2.ellipse(img, P(0, -0.1), (thick(0.62), thick(0.78)), 0, 0, 360, actor.hair, -1, cv2.LINE_AA)
            return box
        rgb, alpha, inverse = self._scaled_head(actor, h)
        top, _, _, left = face_box_in_crop()
        scale = round(h) / FACE_BOX_PX
        x0 = round(x - (left + FACE_BOX_PX / 2) * scale)
        y0 = round(y - (top + FACE_BOX_PX / 2) * scale)
        ch, cw = alpha.shape[:2]
        ix0, iy0 = max(0, x0), max(0, y0)
        ix1, iy1 = min(img.shape[1], x0 + cw), min(img.shape[0], y0 + ch)
        if ix0 < ix1 and iy0 < iy1:
            region = img[iy0:iy1, ix0:ix1]
            sy, sx = slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0)
            region[:] = cv2.blendLinear(rgb[sy, sx], region, alpha[sy, sx], inverse[sy, sx])
        return box

    def _osd(self, img: np.ndarray, t: float) -> None:
        local = (self.start_utc + timedelta(seconds=math.floor(t))).astimezone(self.osd_tz)
        text = local.strftime("%Y-%m-%d %H:%M:%S")
        org = (round(20 * self.sx), round(40 * self.sy))
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.9 * self.sy, (0, 0, 0), max(1, round(4 * self.sy)), cv2.LINE_AA)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.9 * self.sy, (255, 255, 255), max(1, round(2 * self.sy)), cv2.LINE_AA)

    def idle_key(self, index: int) -> int | None:
        """Frames with the same non-None key are identical (nobody in view; same OSD second)."""
        if self.sensor_noise > 0 or self.present(self.frame_time(index)):
            return None
        return math.floor(self.frame_time(index)) if self.osd_tz is not None else -1

    def render_i420(self, index: int) -> np.ndarray:
        """Frame `index` as a (H * 3 / 2, W) I420 array (BT.601, limited range), ready for yuv420p."""
        return cv2.cvtColor(self.render(index), cv2.COLOR_RGB2YUV_I420)

    def render(self, index: int) -> np.ndarray:
        """Frame `index` (time index / fps from the start) as an RGB uint8 array."""
        t = self.frame_time(index)
        actors = self.present(t)
        img = self.background.copy()
        if actors:
            posed = sorted(((self.pose(a, t), a) for a in actors), key=lambda item: item[0].h)
            x0, y0, x1, y1 = img.shape[1], img.shape[0], 0, 0
            for pose, actor in posed:
                bx0, by0, bx1, by1 = self._draw_person(img, actor, pose)
                x0, y0, x1, y1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
            x0, y0 = max(0, x0), max(0, y0)
            x1, y1 = min(img.shape[1], x1), min(img.shape[0], y1)
            if x0 < x1 and y0 < y1:  # the counter and desk hide everything behind them
                cv2.copyTo(self.background[y0:y1, x0:x1], self.fg_mask[y0:y1, x0:x1], img[y0:y1, x0:x1])
        if self._noise:
            img = np.clip(img.astype(np.int16) + self._noise[index % len(self._noise)], 0, 255).astype(np.uint8)
        if self.osd_tz is not None:
            self._osd(img, t)
        return img


# --------------------------------------------------------------------------------------------
# Encoding


@dataclass(frozen=True)
class EncodeOptions:
    preset: str = "ultrafast"
    crf: int = 23
    keyframe_s: float = 10.0


_BT601 = 6  # AVCOL_SPC/PRI/TRC_SMPTE170M
_TV_RANGE = 1  # AVCOL_RANGE_MPEG (16-235)


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def _iso_z(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode(scene: ShopScene, path: Path, first: int, count: int, options: EncodeOptions) -> Path:
    """Encode frames [first, first + count) to an MP4 at `path` (atomic); pts start at 0."""
    path = Path(path)
    rate = _rate(scene.fps)
    tmp = _atomic_target(path)
    try:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            container.metadata["creation_time"] = _iso_z(scene.start_utc + timedelta(seconds=float(first / rate)))
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = scene.width, scene.height, "yuv420p"
            stream.codec_context.time_base = 1 / rate
            # Frames are converted with OpenCV's BT.601 limited-range RGB->I420; say so in the stream.
            stream.codec_context.colorspace = _BT601
            stream.codec_context.color_primaries = _BT601
            stream.codec_context.color_trc = _BT601
            stream.codec_context.color_range = _TV_RANGE
            stream.options = {
                "preset": options.preset,
                "crf": str(options.crf),
                "g": str(max(1, round(options.keyframe_s * scene.fps))),
                "bf": "0",
            }
            idle_cache: dict[int, av.VideoFrame] = {}
            for pts, index in enumerate(range(first, first + count)):
                key = scene.idle_key(index)
                frame = idle_cache.get(key) if key is not None else None
                if frame is None:
                    frame = av.VideoFrame.from_ndarray(scene.render_i420(index), format="yuv420p")
                    if key is not None:
                        idle_cache.clear()
                        idle_cache[key] = frame
                frame.pts = pts
                frame.time_base = stream.codec_context.time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        finally:
            container.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _concat(parts: Sequence[tuple[Path, int]], path: Path, start_utc: datetime, fps: float) -> Path:
    """Join MP4 chunks (path, index of their first frame) encoded with identical settings, without re-encoding."""
    tmp = _atomic_target(Path(path))
    try:
        out = av.open(str(tmp), mode="w", format="mp4")
        try:
            out.metadata["creation_time"] = _iso_z(start_utc)
            out_stream = None
            rate = _rate(fps)
            for part, first in parts:
                with av.open(str(part)) as src:
                    in_stream = src.streams.video[0]
                    if out_stream is None:
                        out_stream = out.add_stream_from_template(in_stream)
                    offset = round(first / rate / in_stream.time_base)
                    for packet in src.demux(in_stream):
                        if packet.dts is None:  # the demuxer's empty flush packet
                            continue
                        packet.pts += offset
                        packet.dts += offset
                        packet.stream = out_stream
                        out.mux(packet)
        finally:
            out.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return Path(path)


def _frame_count(duration_s: float, fps: float) -> int:
    return max(1, round(duration_s * fps))


def _chunk_job(args) -> Path:
    plan, gallery, start_utc, fps, size, seed, scene_kwargs, jobs, options = args
    scene = ShopScene(plan, gallery, start_utc, fps, size, seed, **scene_kwargs)
    for path, first, count in jobs:
        _encode(scene, path, first, count, options)
    return jobs[-1][0] if jobs else Path()


def _run_jobs(plan, gallery, start_utc, fps, size, seed, scene_kwargs, jobs, options, workers: int) -> None:
    """Encode (path, first_frame, count) jobs, split round-robin over `workers` processes."""
    if workers <= 1 or len(jobs) <= 1:
        _chunk_job((plan, gallery, start_utc, fps, size, seed, scene_kwargs, jobs, options))
        return
    import multiprocessing

    groups = [jobs[i::workers] for i in range(workers)]
    # Only the people in the plan travel to the workers.
    needed = {v.person for v in plan}
    small = {p: crops for p, crops in gallery.items() if p in needed}
    payload = [(plan, small, start_utc, fps, size, seed, scene_kwargs, group, options) for group in groups if group]
    with ProcessPoolExecutor(max_workers=len(payload), mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_chunk_job, payload))


def render_footage(
    plan: Sequence[Visit],
    gallery: Gallery,
    out_path: Path,
    start_utc: datetime,
    duration_s: float,
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    *,
    preset: str = "ultrafast",
    crf: int = 23,
    keyframe_s: float = 10.0,
    sensor_noise: float = 0.0,
    osd_tz: ZoneInfo | None = None,
    workers: int = 1,
) -> Path:
    """Render the plan to one H.264 MP4 (yuv420p) covering [start_utc, start_utc + duration_s).

    Frame i shows time start_utc + i / fps and has pts i in time base 1/fps; the file holds
    round(duration_s * fps) frames and its creation_time tag is start_utc. `workers` > 1 renders
    that many time chunks in parallel processes and joins them without re-encoding; the
    processes are started with "spawn", so a calling script needs an `if __name__ == "__main__"`
    guard (and cannot be read from stdin).
    `sensor_noise` (grey-level sigma) adds temporal noise to every frame - realistic for motion
    detection, but every frame is then encoded in full (several times slower, much bigger files).
    `osd_tz` burns a CCTV-style clock (local time of that zone) into the top-left corner.
    """
    out_path = Path(out_path)
    start_utc = _utc(start_utc)
    total = _frame_count(duration_s, fps)
    options = EncodeOptions(preset=preset, crf=crf, keyframe_s=keyframe_s)
    scene_kwargs = {"sensor_noise": sensor_noise, "osd_tz": osd_tz}
    if workers <= 1:
        _run_jobs(plan, gallery, start_utc, fps, size, seed, scene_kwargs, [(out_path, 0, total)], options, 1)
        return out_path
    # Chunks end on keyframe boundaries so the joined stream looks like a single encode.
    gop = max(1, round(keyframe_s * fps))
    per = math.ceil(total / workers / gop) * gop
    jobs = []
    tag = uuid.uuid4().hex
    for k, first in enumerate(range(0, total, per)):
        jobs.append((out_path.with_name(f".{out_path.name}.{tag}.part{k}.tmp"), first, min(per, total - first)))
    try:
        _run_jobs(plan, gallery, start_utc, fps, size, seed, scene_kwargs, jobs, options, workers)
        _concat([(path, first) for path, first, _ in jobs], out_path, start_utc, fps)
    finally:
        for path, _, _ in jobs:
            path.unlink(missing_ok=True)
    return out_path


# --------------------------------------------------------------------------------------------
# Layouts


def plain_path(footage_root: Path, camera: str, local_start: datetime) -> Path:
    """`<root>/<camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4` in the shop's local time."""
    return Path(footage_root) / camera / local_start.strftime("%Y-%m-%d") / f"{local_start.strftime('%H-%M-%S')}.mp4"


def ground_truth_path(footage_root: Path, camera: str, day: date) -> Path:
    return Path(footage_root) / "ground_truth" / camera / f"{day.isoformat()}.csv"


def frigate_segments(start_utc: datetime, duration_s: float, fps: float, segment_s: float) -> list[tuple[datetime, int, int]]:
    """(segment start UTC, first frame, frame count) of each segment, back to back."""
    start_utc = _utc(start_utc)
    total = _frame_count(duration_s, fps)
    per = max(1, round(segment_s * fps))
    if per / fps < 1.0:
        raise ValueError("segments must be at least 1 s long (file names have whole seconds)")
    return [(start_utc + _ms(first / fps), first, min(per, total - first)) for first in range(0, total, per)]


def write_day(
    footage_root: Path,
    shop,
    camera: str,
    day: date,
    gallery: Gallery | None = None,
    layout: Layout = "plain",
    *,
    start: time | None = None,
    duration_s: float = 2 * 3600.0,
    visits_per_hour: float = 6.0,
    staff: str | None = None,
    counter_s: tuple[float, float] = (30.0, 180.0),
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    segment_s: float = 10.0,
    skip_idle_segments: bool = False,
    preset: str = "ultrafast",
    crf: int = 23,
    sensor_noise: float = 0.0,
    osd: bool = False,
    workers: int = 1,
    seed: int = 0,
) -> pl.DataFrame:
    """Write one camera-day of footage plus its ground truth; returns the ground truth.

    `shop` is a ShopConfig (id, tz, opening_time are used). Footage starts at `start` local time
    (default: the shop's opening time) on `day` and lasts `duration_s`. layout "plain" writes
    one continuous file named by its local start time; "frigate" writes `segment_s` segments
    (Frigate uses 10 s) named by UTC start; `skip_idle_segments` leaves out segments with nobody
    in view, like Frigate's motion retention. The visit plan depends on (seed, shop, day), not
    on the camera, so all cameras of a shop see the same visits; the scene details and photo
    choice also depend on the camera. `staff` names a gallery person working at the side desk.
    """
    footage_root = Path(footage_root)
    gallery = gallery if gallery is not None else default_gallery()
    if staff is not None and staff not in gallery:
        raise KeyError(f"staff {staff!r} is not in the gallery ({sorted(gallery)})")
    tz = shop.tz
    local_start = datetime.combine(day, start or shop.opening_time, tzinfo=tz)
    start_utc = local_start.astimezone(UTC)
    plan = plan_visits(
        sorted(gallery), start_utc, duration_s, visits_per_hour, _derive_seed(seed, shop.id, day.toordinal()), staff=staff, counter_s=counter_s
    )
    render_seed = _derive_seed(seed, shop.id, camera, day.toordinal())
    osd_tz = tz if osd else None
    if layout == "plain":
        render_footage(
            plan, gallery, plain_path(footage_root, camera, local_start), start_utc, duration_s, fps, size, render_seed,
            preset=preset, crf=crf, sensor_noise=sensor_noise, osd_tz=osd_tz, workers=workers,
        )  # fmt: skip
    elif layout == "frigate":
        segments = frigate_segments(start_utc, duration_s, fps, segment_s)
        if skip_idle_segments:
            spans = [((v.entry_utc - start_utc).total_seconds(), (v.exit_utc - start_utc).total_seconds()) for v in plan]
            segments = [
                s for s in segments if any(a < (s[1] + s[2]) / fps and s[1] / fps < b for a, b in spans)
            ]
        jobs = [(frigate_path(footage_root, camera, seg_start), first, count) for seg_start, first, count in segments]
        options = EncodeOptions(preset=preset, crf=crf, keyframe_s=min(segment_s, 10.0))
        scene_kwargs = {"sensor_noise": sensor_noise, "osd_tz": osd_tz}
        _run_jobs(plan, gallery, start_utc, fps, size, render_seed, scene_kwargs, jobs, options, workers)
    else:
        raise ValueError(f"unknown layout {layout!r}; use 'plain' or 'frigate'")
    truth = ground_truth_frame(plan)
    write_ground_truth(truth, ground_truth_path(footage_root, camera, day))
    return truth


def write_clips(
    footage_root: Path,
    camera: str,
    plan: Sequence[Visit],
    clips: Iterable[datetime],
    gallery: Gallery,
    *,
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    preset: str = "ultrafast",
    crf: int = 23,
    workers: int = 1,
    seed: int = 0,
) -> list[Path]:
    """Film `plan` only during `clips` ((aware local start at a whole second, seconds)): one plain-layout file each,
    returned in time order.

    A day of many short clips (one per visit or busy stretch) instead of hours of idle video. All
    clips are frames of one scene, so a person looks the same in every clip they appear in.
    `workers` > 1 encodes clips in parallel processes ("spawn": callers need a main guard).
    """
    clips = sorted(clips)
    if not clips:
        return []
    origin = _utc(clips[0][0])
    jobs = []
    for local_start, seconds in clips:
        if local_start.tzinfo is None or local_start.microsecond:
            raise ValueError(f"clip start {local_start} must be timezone-aware and on a whole second")
        first = round((_utc(local_start) - origin).total_seconds() * fps)
        jobs.append((plain_path(footage_root, camera, local_start), first, _frame_count(seconds, fps)))
    options = EncodeOptions(preset=preset, crf=crf)
    scene_kwargs = {"sensor_noise": 0.0, "osd_tz": None}
    # Longest first, so the round-robin split gives both workers similar work.
    ordered = sorted(jobs, key=lambda job: -job[2])
    _run_jobs(list(plan), gallery, origin, fps, size, seed, scene_kwargs, ordered, options, workers)
    return [path for path, _, _ in jobs]


def make_demo_footage(
    config,
    days: Iterable[date],
    seed: int = 0,
    *,
    gallery: Gallery | Path | None = None,
    duration_s: float = 600.0,
    visits_per_hour: float = 24.0,
    counter_s: tuple[float, float] = (30.0, 90.0),
    staff: str | None = None,
    layout: Layout = "plain",
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: float = DEFAULT_FPS,
    workers: int = 1,
) -> pl.DataFrame:
    """Short demo footage (default 10 min from opening, ~4 visits) for every shop camera and day.

    `config` is a WatershopConfig; footage goes under `config.footage_root`. `gallery` is a
    gallery, a folder of `<person>/*.jpg`, or None for the default gallery (two people from
    package sample photos). Returns all ground truth with shop_id, camera and date columns.
    """
    if gallery is None or isinstance(gallery, (str, Path)):
        gallery = load_gallery(Path(gallery) if gallery is not None else None)
    frames = []
    for day in days:
        for shop in config.shops:
            for camera in shop.cameras:
                truth = write_day(
                    config.footage_root, shop, camera, day, gallery, layout,
                    duration_s=duration_s, visits_per_hour=visits_per_hour, counter_s=counter_s,
                    staff=staff, size=size, fps=fps, workers=workers, seed=seed,
                )  # fmt: skip
                frames.append(
                    truth.select(
                        pl.lit(shop.id).alias("shop_id"), pl.lit(camera).alias("camera"), pl.lit(day).alias("date"), pl.all()
                    )
                )
    if not frames:
        return pl.DataFrame(schema={"shop_id": pl.String, "camera": pl.String, "date": pl.Date, **GT_SCHEMA})
    return pl.concat(frames)
