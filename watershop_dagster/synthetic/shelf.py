"""Synthetic shelf-camera footage with items falling off the shelves, distractors and ground truth.

A camera faces a shelf unit (boards with rows of products) with a strip of floor below it; one
`kind: shelf` zone covers the unit and the floor. Items of varied size, shape and colour drop from
a board's edge under gravity (`px_per_m` of the scene), hit the floor, some bounce and roll, and
stay there. Distractors (each scripted so it never hides a drop): a shopper standing at the shelf
who reaches in, takes an item and puts it back; people walking past; a cart pushed past; a
swinging sign hung at one end of the shelf; lamp steps and flicker bursts; sensor noise; and the
H.264 compression of the writer.

Rendering is a pure function of the frame time and the scene has what `footage._encode` needs, so
the plain and Frigate layouts of the shop footage writer are used as they are. Ground truth
(`drops`): camera, zone, release and landing times, drop height and item size in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from watershop_dagster.synthetic.footage import (
    EncodeOptions,
    _derive_seed,
    _encode,
    _frame_count,
    _utc,
    frigate_path,
    frigate_segments,
)

SIZE = (640, 360)
FPS = 20.0
GRAVITY_M_S2 = 9.81
#: the shelf unit and floor in pixels of the 640x360 frame
SHELF_X = (70.0, 570.0)
BOARD_YS = (78.0, 138.0, 198.0)  # boards items sit on (the floor is below the lowest)
SHELF_BOTTOM_Y = 240.0
FLOOR_Y = (262.0, 318.0)  # where a falling item's bottom lands (nearer the camera: lower)
ZONE_BOX = (60.0, 20.0, 580.0, 330.0)
ZONE_HEIGHT_M = 1.9  # the real height the zone spans: g in px/s² = 9.81 * zone px height / this
SIGN_X = (500.0, 560.0)  # the swinging sign hangs here; drops keep clear of it

DROP_SCHEMA = pl.Schema({
    "camera": pl.Utf8,
    "zone": pl.Utf8,
    "release_utc": pl.Datetime("us", "UTC"),
    "landing_utc": pl.Datetime("us", "UTC"),
    "drop_height_px": pl.Float64,
    "item_w_px": pl.Float64,
    "item_h_px": pl.Float64,
    "bounces": pl.Boolean,
})


def zone_name(camera: str) -> str:
    return f"shelf_{camera}"


def zone_coordinates() -> str:
    """Frigate's relative "x1,y1,..." of the scene's shelf zone."""
    x0, y0, x1, y1 = ZONE_BOX
    w, h = SIZE
    return ",".join(f"{x / w:.4f},{y / h:.4f}" for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def px_per_m() -> float:
    return (ZONE_BOX[3] - ZONE_BOX[1]) / ZONE_HEIGHT_M


@dataclass(frozen=True)
class Drop:
    t_release: float
    x: float  # item centre at release
    y_bottom: float  # the item's bottom at release (a board)
    y_floor: float  # the item's bottom once landed
    w: float
    h: float
    colour: tuple[int, int, int]
    round: bool
    vx: float  # px/s sideways (a nudged item)
    restitution: float  # 0: no bounce
    g: float  # px/s²

    @property
    def t_land(self) -> float:
        return self.t_release + math.sqrt(2 * (self.y_floor - self.y_bottom) / self.g)

    def bottom_at(self, t: float) -> tuple[float, float]:
        """(x centre, y bottom) of the item at time t >= release: fall, bounces, roll, rest."""
        dt = t - self.t_release
        fall = self.t_land - self.t_release
        if dt <= fall:
            return self.x + self.vx * dt, self.y_bottom + 0.5 * self.g * dt * dt
        x_land = self.x + self.vx * fall
        after = dt - fall
        speed = self.g * fall * self.restitution
        y = self.y_floor
        rest = after
        while speed > 30.0:  # bounces, each lower
            flight = 2 * speed / self.g
            if rest < flight:
                y = self.y_floor - (speed * rest - 0.5 * self.g * rest * rest)
                break
            rest -= flight
            speed *= self.restitution
        roll_v = (self.vx + (40.0 if self.round else 0.0) * np.sign(self.vx or 1.0))
        roll = roll_v * (1 - math.exp(-after / 0.6)) * 0.6 if self.round else self.vx * min(after, 0.1)
        return x_land + roll, y


@dataclass(frozen=True)
class Reach:
    """A shopper at the shelf reaching for an item (arm from the body below) and putting it back."""

    t0: float
    t1: float
    x_body: float
    target: tuple[float, float]
    shirt: tuple[int, int, int]
    skin: tuple[int, int, int]
    item: tuple[int, int, int]


@dataclass(frozen=True)
class Pass:
    """Someone walking past in front of the shelf, or a cart pushed past (`cart`)."""

    t0: float
    t1: float
    left_to_right: bool
    cart: bool
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class ShelfPlan:
    drops: tuple[Drop, ...]
    reaches: tuple[Reach, ...]
    passes: tuple[Pass, ...]
    light_steps: tuple[tuple[float, float], ...]  # (time, gain change)
    flicker: tuple[tuple[float, float], ...]  # (start, end) of flicker bursts
    sign_amplitude_deg: float
    sign_period_s: float


def plan_shelf(duration_s: float, seed: int, camera: str, *, drops: int = 16, reaches: int = 6, walkers: int = 6,
               carts: int = 3, light_steps: int = 4, flicker_bursts: int = 3) -> ShelfPlan:  # fmt: skip
    """Events spread over [0, duration_s) in shuffled slots (one event per slot, so none hides a drop)."""
    rng = np.random.default_rng(_derive_seed(seed, camera, "shelf"))
    kinds = ["drop"] * drops + ["reach"] * reaches + ["walk"] * walkers + ["cart"] * carts
    rng.shuffle(kinds)
    slot = (duration_s - 4.0) / max(1, len(kinds))
    g = GRAVITY_M_S2 * px_per_m()
    out_drops, out_reaches, out_passes = [], [], []
    for k, kind in enumerate(kinds):
        start = 2.0 + k * slot
        if kind == "drop":
            w = float(rng.uniform(6, 24))
            h = float(rng.uniform(8, 30)) if rng.random() < 0.7 else w
            board = float(rng.choice(BOARD_YS))
            out_drops.append(Drop(
                t_release=float(start + rng.uniform(0.5, max(0.6, slot - 3.0))),
                x=float(rng.uniform(SHELF_X[0] + 20, SIGN_X[0] - 20)), y_bottom=board,
                y_floor=float(rng.uniform(*FLOOR_Y)), w=w, h=h,
                colour=tuple(int(c) for c in rng.integers(20, 240, 3)), round=bool(rng.random() < 0.3),
                vx=float(rng.uniform(-40, 40)), restitution=float(rng.choice([0.0, 0.0, 0.25, 0.4])), g=g,
            ))  # fmt: skip
        elif kind == "reach":
            length = float(rng.uniform(min(3.0, 0.6 * slot), max(min(3.0, 0.6 * slot), min(6.0, slot - 1.0))))
            t0 = float(start + rng.uniform(0.3, max(0.4, slot - length - 0.5)))
            out_reaches.append(Reach(
                t0, t0 + length, float(rng.uniform(150, 480)),
                (float(rng.uniform(SHELF_X[0] + 30, SHELF_X[1] - 30)), float(rng.choice(BOARD_YS)) - 10),
                tuple(int(c) for c in rng.integers(20, 236, 3)), _skin(rng), tuple(int(c) for c in rng.integers(20, 240, 3)),
            ))  # fmt: skip
        else:
            length = float(rng.uniform(min(2.5, 0.6 * slot), max(min(2.5, 0.6 * slot), min(5.0, slot - 1.0))))
            t0 = float(start + rng.uniform(0.3, max(0.4, slot - length - 0.5)))
            out_passes.append(Pass(t0, t0 + length, bool(rng.random() < 0.5), kind == "cart",
                                   tuple(int(c) for c in rng.integers(20, 236, 3))))
    steps, level = [], 0.0
    for at in np.sort(rng.uniform(0, duration_s, light_steps)):
        delta = -0.25 if level > 0 else 0.25 if level < 0 else float(rng.choice([-0.25, 0.25]))
        level += delta
        steps.append((float(at), delta))
    bursts = [(float(a), float(a + rng.uniform(0.5, 2.0))) for a in np.sort(rng.uniform(0, duration_s - 2, flicker_bursts))]
    return ShelfPlan(tuple(out_drops), tuple(out_reaches), tuple(out_passes), tuple(steps), tuple(bursts),
                     float(rng.uniform(6, 14)), float(rng.uniform(1.4, 2.6)))


def _skin(rng: np.random.Generator) -> tuple[int, int, int]:
    tone = rng.uniform(0.35, 1.0)
    return int(90 + 150 * tone), int(60 + 130 * tone), int(40 + 110 * tone)


def _draw_shelf(seed: int, camera: str) -> np.ndarray:
    rng = np.random.default_rng(_derive_seed(seed, camera, "shelf-store"))
    w, h = SIZE
    img = np.zeros((h, w, 3), np.uint8)
    wall = np.array([rng.integers(190, 230), rng.integers(185, 225), rng.integers(170, 215)], np.float32)
    img[:] = wall.astype(np.uint8)
    floor = tuple(int(c) for c in rng.integers(140, 190, 3))
    cv2.rectangle(img, (0, int(SHELF_BOTTOM_Y) + 8), (w, h), floor, -1)
    grout = tuple(max(0, c - 20) for c in floor)
    for y in (285, 315, 350):
        cv2.line(img, (0, y), (w, y), grout, 1, cv2.LINE_AA)
    x0, x1 = int(SHELF_X[0]), int(SHELF_X[1])
    cv2.rectangle(img, (x0, 30), (x1, int(SHELF_BOTTOM_Y) + 8), (95, 92, 98), -1)
    for board in (*BOARD_YS, SHELF_BOTTOM_Y):
        cv2.rectangle(img, (x0, int(board)), (x1, int(board) + 5), (205, 205, 210), -1)
        if board == SHELF_BOTTOM_Y:
            break
        x = x0 + 4.0
        while x < x1 - 8:
            pw, ph = float(rng.uniform(7, 16)), float(rng.uniform(12, 26))
            colour = tuple(int(c) for c in rng.integers(30, 250, 3))
            cv2.rectangle(img, (round(x), round(board - ph)), (round(x + pw), int(board) - 1), colour, -1)
            x += pw + float(rng.uniform(1, 3))
    return img


class ShelfScene:
    """Frame `i` of one shelf camera as RGB (or I420 for the writer); a pure function of the frame time."""

    def __init__(self, camera: str, plan: ShelfPlan, start_utc: datetime, seed: int, *, fps: float = FPS,
                 sensor_noise: float = 2.5) -> None:  # fmt: skip
        self.camera = camera
        self.plan = plan
        self.start_utc = _utc(start_utc)
        self.fps = float(fps)
        self.width, self.height = SIZE
        self.background = _draw_shelf(seed, camera)
        rng = np.random.default_rng(_derive_seed(seed, camera, "shelf-noise"))
        self._noise = []
        for _ in range(8):
            n = np.repeat(np.clip(rng.normal(0, sensor_noise, (self.height, self.width, 1)), -40, 40).round().astype(np.int16), 3, 2)
            self._noise.append((np.clip(n, 0, None).astype(np.uint8), np.clip(-n, 0, None).astype(np.uint8)))

    def idle_key(self, index: int) -> int | None:
        return None

    def gain(self, t: float) -> float:
        g = 1.0
        for at, delta in self.plan.light_steps:
            g += delta * min(1.0, max(0.0, (t - at) / 0.3))
        for a, b in self.plan.flicker:
            if a <= t < b:
                g *= 1.0 + 0.08 * math.sin(2 * math.pi * 8.0 * t)
        return g

    def render(self, index: int) -> np.ndarray:
        t = index / self.fps
        img = self.background.copy()
        for drop in self.plan.drops:
            self._draw_drop(img, drop, t)
        self._draw_sign(img, t)
        for reach in self.plan.reaches:
            if reach.t0 <= t < reach.t1:
                self._draw_reach(img, reach, t)
        for p in self.plan.passes:
            if p.t0 <= t < p.t1:
                self._draw_pass(img, p, t)
        gain = self.gain(t)
        if abs(gain - 1.0) > 1e-4:
            img = cv2.LUT(img, np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8))
        pos, neg = self._noise[index % len(self._noise)]
        return cv2.subtract(cv2.add(img, pos), neg)

    def render_i420(self, index: int) -> np.ndarray:
        return cv2.cvtColor(self.render(index), cv2.COLOR_RGB2YUV_I420)

    @staticmethod
    def _draw_drop(img: np.ndarray, drop: Drop, t: float) -> None:
        x, y = (drop.x, drop.y_bottom) if t < drop.t_release else drop.bottom_at(t)
        if drop.round:
            r = drop.w / 2
            cv2.circle(img, (round(x), round(y - r)), max(2, round(r)), drop.colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (round(x - drop.w / 2), round(y - drop.h)), (round(x + drop.w / 2), round(y) - 1), drop.colour, -1)

    def _draw_sign(self, img: np.ndarray, t: float) -> None:
        angle = math.radians(self.plan.sign_amplitude_deg) * math.sin(2 * math.pi * t / self.plan.sign_period_s)
        pivot = ((SIGN_X[0] + SIGN_X[1]) / 2, 22.0)
        length = 60.0
        cx, cy = pivot[0] + length * math.sin(angle), pivot[1] + length * math.cos(angle)
        cv2.line(img, (round(pivot[0]), round(pivot[1])), (round(cx), round(cy)), (40, 40, 40), 1, cv2.LINE_AA)
        c, s = math.cos(angle), math.sin(angle)
        corners = [(-22, 0), (22, 0), (22, 26), (-22, 26)]
        pts = np.array([(cx + dx * c + dy * s, cy - dx * s + dy * c) for dx, dy in corners], np.int32)
        cv2.fillPoly(img, [pts], (220, 40, 40), cv2.LINE_AA)

    @staticmethod
    def _draw_reach(img: np.ndarray, reach: Reach, t: float) -> None:
        u = (t - reach.t0) / (reach.t1 - reach.t0)
        extend = min(1.0, u / 0.35) if u < 0.5 else min(1.0, (1.0 - u) / 0.35)  # out, hold, back
        shoulder = (reach.x_body + 30.0, 250.0)
        body = np.array([(reach.x_body - 40, 245), (reach.x_body + 40, 245), (reach.x_body + 55, 360), (reach.x_body - 55, 360)], np.int32)
        cv2.fillPoly(img, [body], reach.shirt, cv2.LINE_AA)
        cv2.circle(img, (round(reach.x_body), 222), 24, reach.skin, -1, cv2.LINE_AA)
        hand = (shoulder[0] + (reach.target[0] - shoulder[0]) * extend, shoulder[1] + (reach.target[1] - shoulder[1]) * extend)
        cv2.line(img, (round(shoulder[0]), round(shoulder[1])), (round(hand[0]), round(hand[1])), reach.shirt, 9, cv2.LINE_AA)
        cv2.circle(img, (round(hand[0]), round(hand[1])), 6, reach.skin, -1, cv2.LINE_AA)
        if 0.3 < u < 0.7:  # holding an item taken from the shelf, then put back
            cv2.rectangle(img, (round(hand[0]) - 6, round(hand[1]) - 16), (round(hand[0]) + 6, round(hand[1]) - 2), reach.item, -1)

    def _draw_pass(self, img: np.ndarray, p: Pass, t: float) -> None:
        u = (t - p.t0) / (p.t1 - p.t0)
        x = -80 + (self.width + 160) * (u if p.left_to_right else 1 - u)
        if p.cart:
            cv2.rectangle(img, (round(x - 60), 255), (round(x + 60), 320), p.colour, -1)
            cv2.rectangle(img, (round(x - 60), 255), (round(x + 60), 262), (60, 60, 60), -1)
            for wx in (x - 45, x + 45):
                cv2.circle(img, (round(wx), 328), 7, (30, 30, 30), -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (round(x - 28), 150), (round(x + 28), 290), p.colour, -1)
            cv2.rectangle(img, (round(x - 18), 290), (round(x + 18), 355), (50, 50, 60), -1)
            cv2.circle(img, (round(x), 128), 22, (170, 130, 100), -1, cv2.LINE_AA)


def drop_truth(scene: ShelfScene) -> pl.DataFrame:
    """One row per drop: camera, zone, release and landing times, drop height and item size (px)."""
    rows = []
    for d in scene.plan.drops:
        rows.append((scene.camera, zone_name(scene.camera),
                     scene.start_utc + timedelta(seconds=d.t_release), scene.start_utc + timedelta(seconds=d.t_land),
                     d.y_floor - d.y_bottom, d.w, d.h, d.restitution > 0))
    return pl.DataFrame(rows, schema=DROP_SCHEMA, orient="row")


def camera_config(cameras: Sequence[str]) -> dict:
    """Frigate-shaped `cameras:` mapping with each camera's shelf zone, for a ShopConfig."""
    return {camera: {"detect": {"width": SIZE[0], "height": SIZE[1], "fps": FPS},
                     "zones": {zone_name(camera): {"coordinates": zone_coordinates(), "kind": "shelf"}}}
            for camera in cameras}


def write_shelf_footage(path: Path, camera: str, start_utc: datetime, duration_s: float, seed: int, *,
                        crf: int = 26, plan: ShelfPlan | None = None) -> pl.DataFrame:  # fmt: skip
    """One MP4 of a shelf camera; returns the drops' ground truth."""
    plan = plan or plan_shelf(duration_s, seed, camera)
    scene = ShelfScene(camera, plan, start_utc, seed)
    _encode(scene, Path(path), 0, _frame_count(duration_s, scene.fps), EncodeOptions(crf=crf))
    return drop_truth(scene)


def write_shelf_segments(footage_root: Path, camera: str, start_utc: datetime, duration_s: float, seed: int, *,
                         segment_s: float = 60.0, crf: int = 26, plan: ShelfPlan | None = None) -> tuple[list[Path], pl.DataFrame]:  # fmt: skip
    """Frigate-layout segments (`recordings/<day>/<HH>/<camera>/<MM.SS>.mp4`) of a shelf camera, and the drops."""
    plan = plan or plan_shelf(duration_s, seed, camera)
    scene = ShelfScene(camera, plan, start_utc, seed)
    options = EncodeOptions(crf=crf, keyframe_s=min(segment_s, 10.0))
    paths = [_encode(scene, frigate_path(footage_root, camera, seg_start), first, count, options)
             for seg_start, first, count in frigate_segments(start_utc, duration_s, scene.fps, segment_s)]
    return paths, drop_truth(scene)
