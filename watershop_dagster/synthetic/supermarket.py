"""Synthetic supermarket footage with ground truth for people tracking and zone analytics.

Each camera looks down a floor in front of a shelf wall: an entrance at one side edge, a strip
in front of the shelves, a promo stand, a checkout counter and the aisle between them. The
layout (mirroring, positions, colours) varies per camera. Shoppers are drawn figures (head,
torso, arms, swinging legs, a soft shadow) with varied clothing colours and sizes, scaled by a
simple ground-plane perspective. A shopper walks in through the entrance, visits one to three
zones (pausing there with slight sway), walks out the same way; `still_shoppers` of them stand
perfectly motionless for minutes. Paths cross, so shoppers occlude each other. Lighting steps
and drifts, sensor noise and H.264 compression come on top.

Rendering is a pure function of the frame time, and `SupermarketScene` has the interface the
existing writer (`footage._encode`) needs, so the same plain / Frigate layouts are written.

Ground truth (plain data, `SupermarketTruth`):

* `boxes`: one row per shopper per frame with any part in view: the drawn figure's box
  (pixels, clipped to the frame), the bottom-centre (foot) point and `visibility` (the share of
  the box not covered by shoppers nearer the camera; scoring usually ignores < 0.3).
* `zone_config`: Frigate-shaped cameras and zones (`coordinates` relative "x1,y1,x2,y2,...",
  `kind`, `inertia`, `loitering_time`).
* `zone_visits`: a shopper's foot point in a zone, by the product's definition (README "Zones")
  applied to the true foot points: entry at the first of `inertia` consecutive frames inside,
  absences up to the exit debounce (1 s) bridged, exit_ts = the last frame inside, dwell_s
  between. So a perfectly tracked shopper scores 1.0: what remains is the tracker's error.
* `loitering`: visits with dwell_s >= the zone's loitering_time (alert_ts = enter + that time).
* `footfall`: per shopper one "in" (ts = first frame of the foot point inside the entrance
  zone, walking in from outside the frame) and one "out" (ts = last frame before leaving).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from watershop_dagster.synthetic.footage import (
    DEFAULT_FPS,
    EncodeOptions,
    Layout,
    _atomic_target,
    _derive_seed,
    _encode,
    _frame_count,
    _utc,
    frigate_path,
    frigate_segments,
    plain_path,
)
from watershop_dagster.zones.analytics import DEFAULT_EXIT_DEBOUNCE_SECONDS

_BASE_W, _BASE_H = 1280, 720  # layouts are designed at this size and scaled
DEFAULT_SIZE = (1280, 720)
HORIZON_Y = 150.0  # base px: where a person's height would shrink to zero
PERSON_HEIGHT_PER_PX = 0.55  # a person's height (px) per px of foot below the horizon
PERSON_HEIGHT_M = 1.7
ZONE_KINDS = ("entrance", "aisle", "shelf", "checkout", "promo")
DEFAULT_LOITERING_S = {"entrance": 20.0, "aisle": 45.0, "shelf": 60.0, "checkout": 120.0, "promo": 30.0}
DEFAULT_INERTIA = 3
MIN_VISIBILITY = 0.3  # ground-truth boxes less visible than this are usually not scored

BOX_SCHEMA = pl.Schema(
    {
        "camera": pl.String,
        "person": pl.String,
        "frame": pl.Int64,
        "ts": pl.Datetime("us", "UTC"),
        "x1": pl.Float64,
        "y1": pl.Float64,
        "x2": pl.Float64,
        "y2": pl.Float64,
        "foot_x": pl.Float64,
        "foot_y": pl.Float64,
        "visibility": pl.Float64,
    }
)
VISIT_SCHEMA = pl.Schema(
    {"camera": pl.String, "person": pl.String, "zone": pl.String, "kind": pl.String,
     "enter_ts": pl.Datetime("us", "UTC"), "exit_ts": pl.Datetime("us", "UTC"), "dwell_s": pl.Float64}
)  # fmt: skip
LOITERING_SCHEMA = pl.Schema(
    {"camera": pl.String, "person": pl.String, "zone": pl.String,
     "start_ts": pl.Datetime("us", "UTC"), "alert_ts": pl.Datetime("us", "UTC"), "dwell_s": pl.Float64}
)  # fmt: skip
FOOTFALL_SCHEMA = pl.Schema({"camera": pl.String, "person": pl.String, "ts": pl.Datetime("us", "UTC"), "direction": pl.String})


# --------------------------------------------------------------------------------------------
# Camera view and zones


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in base px (the floor area)
    loitering_time: float
    inertia: int = DEFAULT_INERTIA

    def relative_coordinates(self) -> str:
        """Frigate's relative form: "x1,y1,x2,y2,..." clockwise from the top-left corner."""
        x0, y0, x1, y1 = self.box
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return ",".join(f"{x / _BASE_W:.4f},{y / _BASE_H:.4f}" for x, y in points)

    def contains(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self.box
        return x0 <= x < x1 and y0 <= y < y1


@dataclass(frozen=True)
class CameraView:
    camera: str
    seed: int
    mirrored: bool
    zones: tuple[Zone, ...]
    entrance_y: tuple[float, float]  # foot y range (base px) of people walking in
    shelf_top: float  # base y where the floor meets the shelf wall
    promo_stand: tuple[float, float, float, float]  # base px
    checkout_counter: tuple[float, float, float, float]

    def zone(self, kind: str) -> Zone:
        return next(z for z in self.zones if z.kind == kind)

    def frigate_zones(self) -> dict:
        return {
            z.name: {"coordinates": z.relative_coordinates(), "kind": z.kind, "inertia": z.inertia, "loitering_time": z.loitering_time}
            for z in self.zones
        }


def camera_view(camera: str, index: int, seed: int = 0) -> CameraView:
    """The layout of camera number `index` (mirrored on odd numbers, jittered by the seed)."""
    rng = np.random.default_rng(_derive_seed(seed, camera, index, "view"))
    mirrored = index % 2 == 1
    j = lambda spread: float(rng.uniform(-spread, spread))  # noqa: E731
    shelf_top = 250.0 + j(15)
    # designed with the entrance on the left; mirrored views flip x
    boxes = {
        "entrance": (0.0, 500.0 + j(15), 200.0 + j(15), 715.0),
        "shelf": (260.0 + j(20), shelf_top + 5, 900.0 + j(20), shelf_top + 95),
        "promo": (470.0 + j(30), 430.0 + j(10), 700.0 + j(30), 530.0 + j(10)),
        "checkout": (960.0 + j(20), 450.0 + j(15), 1260.0, 715.0),
        "aisle": (240.0 + j(10), 590.0 + j(10), 920.0 + j(10), 715.0),
    }
    stand = (boxes["promo"][0] + 60, boxes["promo"][1] - 70, boxes["promo"][2] - 60, boxes["promo"][1] - 5)
    counter = (boxes["checkout"][0] + 30, boxes["checkout"][1] - 90, 1270.0, boxes["checkout"][1] - 10)

    def flip(box):
        if not mirrored:
            return box
        x0, y0, x1, y1 = box
        return (_BASE_W - x1, y0, _BASE_W - x0, y1)

    zones = tuple(
        Zone(f"{kind}_{camera}", kind, flip(box), DEFAULT_LOITERING_S[kind]) for kind, box in boxes.items()
    )
    return CameraView(
        camera=camera, seed=seed, mirrored=mirrored, zones=zones,
        entrance_y=(boxes["entrance"][1] + 40, 690.0), shelf_top=shelf_top,
        promo_stand=flip(stand), checkout_counter=flip(counter),
    )  # fmt: skip


def person_height(foot_y: float) -> float:
    """A 1.7 m person's height in base px with the feet at base y `foot_y`."""
    return max(1.0, PERSON_HEIGHT_PER_PX * (foot_y - HORIZON_Y))


# --------------------------------------------------------------------------------------------
# Shoppers


@dataclass(frozen=True)
class Leg:
    """One straight walk (or pause when start == end) of a shopper, times in seconds from the start."""

    t0: float
    t1: float
    start: tuple[float, float]  # foot point, base px
    end: tuple[float, float]


@dataclass(frozen=True)
class Shopper:
    person: str
    legs: tuple[Leg, ...]
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    scale: float  # body height relative to a 1.7 m adult
    width: float  # shoulder width relative to the height
    still: bool  # stands motionless for minutes in one zone
    sway_phase: float

    @property
    def t_entry(self) -> float:
        return self.legs[0].t0

    @property
    def t_exit(self) -> float:
        return self.legs[-1].t1

    def foot(self, t: float) -> tuple[float, float, bool, float]:
        """(x, y, walking, walked distance along this leg) at time t (base px)."""
        for leg in self.legs:
            if leg.t0 <= t < leg.t1:
                u = (t - leg.t0) / (leg.t1 - leg.t0)
                x = leg.start[0] + (leg.end[0] - leg.start[0]) * u
                y = leg.start[1] + (leg.end[1] - leg.start[1]) * u
                walking = leg.start != leg.end
                return x, y, walking, u * math.dist(leg.start, leg.end)
        last = self.legs[-1].end
        return last[0], last[1], False, 0.0


def _palette(rng: np.random.Generator) -> tuple[tuple[int, int, int], ...]:
    shirt = tuple(int(c) for c in rng.integers(20, 236, 3))
    pants = tuple(int(c) for c in (rng.integers(15, 90, 3) if rng.random() < 0.7 else rng.integers(90, 200, 3)))
    tone = rng.uniform(0.35, 1.0)
    skin = (int(90 + 150 * tone), int(60 + 130 * tone), int(40 + 110 * tone))
    hair = tuple(int(c) for c in rng.integers(10, 120, 3))
    return shirt, pants, skin, hair


def _px_per_s(y: float, speed_m_s: float) -> float:
    return speed_m_s * person_height(y) / PERSON_HEIGHT_M


def walk_legs(points: Sequence[tuple[tuple[float, float], float]], t0: float, speed_m_s: float = 1.2) -> tuple[Leg, ...]:
    """Legs through (foot point in base px, pause s at it) from time t0, walking at `speed_m_s`."""
    legs: list[Leg] = []
    t = t0
    for (a, _), (b, pause) in zip(points[:-1], points[1:]):
        walk = math.dist(a, b) / _px_per_s((a[1] + b[1]) / 2, speed_m_s)
        legs.append(Leg(t, t + walk, a, b))
        t += walk
        if pause > 0:
            legs.append(Leg(t, t + pause, b, b))
            t += pause
    return tuple(legs)


def scripted_shopper(person: str, points: Sequence[tuple[tuple[float, float], float]], t0: float, *, speed_m_s: float = 1.2,
                     still: bool = False, seed: int = 0) -> Shopper:  # fmt: skip
    """A shopper walking a given route (for tests): looks drawn from `seed`, pauses motionless when `still`."""
    rng = np.random.default_rng(_derive_seed(seed, person, "look"))
    shirt, pants, skin, hair = _palette(rng)
    return Shopper(person, walk_legs(points, t0, speed_m_s), shirt, pants, skin, hair, 1.0, 0.28, still, 0.0)


def _spot(rng: np.random.Generator, zone: Zone) -> tuple[float, float]:
    """A place to stand in the middle of the zone (base px)."""
    z0, w0, z1, w1 = zone.box
    return float(rng.uniform(z0 + 0.25 * (z1 - z0), z0 + 0.75 * (z1 - z0))), float(rng.uniform(w0 + 0.3 * (w1 - w0), w0 + 0.7 * (w1 - w0)))


def plan_shoppers(
    view: CameraView,
    duration_s: float,
    seed: int,
    *,
    shoppers_per_minute: float = 1.5,
    still_shoppers: int = 1,
    still_s: tuple[float, float] = (180.0, 240.0),
    pause_s: tuple[float, float] = (4.0, 40.0),
    checkout_share: float | None = None,
    loiterers: int = 0,
    loiter_extra_s: tuple[float, float] = (3.0, 10.0),
) -> list[Shopper]:
    """Shoppers of one camera in [0, duration_s): arrivals spread over the time, each back out before the end.

    `still_shoppers` more stand motionless for `still_s` at one zone (none when the footage is
    too short for that). `loiterers` more (drawn apart, so the others stay as they were) stop once,
    swaying, in a zone for its loitering_time plus `loiter_extra_s`: true loitering events, in a
    zone past the entrance whose threshold the footage is long enough for (none when no zone's is). `checkout_share` (for receipts made from the plan): that share of the
    shoppers end their stops at the checkout (they pay, then leave) and the others never stop there;
    None: the checkout is one of the zones drawn, in any order.
    """
    rng = np.random.default_rng(_derive_seed(seed, view.camera, "shoppers"))
    count = max(1, round(shoppers_per_minute * duration_s / 60.0))
    arrivals = np.sort(rng.uniform(1.0, max(2.0, duration_s * 0.85), count))
    # the still shoppers arrive early enough to stand their minutes and walk out again
    latest_still = duration_s - still_s[1] - 45.0
    n_still = min(still_shoppers, count) if latest_still > 2.0 else 0
    still_arrivals = np.sort(rng.uniform(2.0, latest_still, n_still)) if n_still else np.zeros(0)
    is_still = np.zeros(count + n_still, bool)
    is_still[count:] = True
    arrivals = np.concatenate([arrivals, still_arrivals])
    order = np.argsort(arrivals, kind="stable")
    arrivals, is_still = arrivals[order], is_still[order]
    targets = [z for z in view.zones if z.kind != "entrance" and (checkout_share is None or z.kind != "checkout")]
    shoppers: list[Shopper] = []
    for number, (arrival, still) in enumerate(zip(arrivals, is_still)):
        shirt, pants, skin, hair = _palette(rng)
        scale = float(rng.uniform(0.62, 0.75)) if rng.random() < 0.12 else float(rng.uniform(0.88, 1.1))
        speed = float(rng.uniform(0.9, 1.4))
        outside, door = _way_in(rng, view)
        still = bool(still)
        stops = []
        n_stops = 1 if still else int(rng.integers(1, 4))
        for zone in rng.choice(len(targets), n_stops, replace=False):
            stops.append((_spot(rng, targets[zone]), float(rng.uniform(*still_s)) if still else float(rng.uniform(*pause_s))))
        if checkout_share is not None and not still and rng.random() < checkout_share:
            stops.append((_spot(rng, view.zone("checkout")), float(rng.uniform(*pause_s))))
        legs = walk_legs(_round_trip(outside, door, stops), float(arrival), speed)
        if legs[-1].t1 > duration_s - 1.0:
            continue  # would still be in view at the end: leave the shopper out
        shoppers.append(
            Shopper(
                person=f"{view.camera}-p{number:03d}", legs=tuple(legs), shirt=shirt, pants=pants, skin=skin, hair=hair,
                scale=scale, width=float(rng.uniform(0.24, 0.32)), still=still, sway_phase=float(rng.uniform(0, 2 * math.pi)),
            )
        )  # fmt: skip
    return shoppers + _plan_loiterers(view, duration_s, seed, loiterers, loiter_extra_s, speed_m_s=1.2)


def _way_in(rng: np.random.Generator, view: CameraView) -> tuple[tuple[float, float], tuple[float, float]]:
    """A shopper's start outside the frame and the point where they pass the entrance zone."""
    y_in = float(rng.uniform(*view.entrance_y))
    ex0, _, ex1, _ = view.zone("entrance").box
    door = (float(rng.uniform(ex0 + 0.3 * (ex1 - ex0), ex0 + 0.7 * (ex1 - ex0))), y_in)
    return (-60.0 if not view.mirrored else _BASE_W + 60.0, y_in), door


def _round_trip(outside: tuple[float, float], door: tuple[float, float],
                stops: list[tuple[tuple[float, float], float]]) -> list[tuple[tuple[float, float], float]]:
    """In through the door, the stops (point, seconds), and back out the same way."""
    return [(outside, 0.0), (door, 0.0), *stops, (door, 0.0), (outside, 0.0)]


#: seconds a loiterer needs besides the stop: walking in from outside the frame and back out
_LOITER_WALK_S = 16.0


def _plan_loiterers(view: CameraView, duration_s: float, seed: int, count: int, extra_s: tuple[float, float],
                    speed_m_s: float) -> list[Shopper]:
    """`count` shoppers who each stop once, long enough to loiter, in a zone that fits the footage."""
    rng = np.random.default_rng(_derive_seed(seed, view.camera, "loiterers"))
    # not in the entrance: someone standing in the doorway would stand in every other shopper's path
    fitting = [z for z in view.zones if z.kind != "entrance" and z.loitering_time + extra_s[1] + _LOITER_WALK_S < duration_s - 2.0]
    if not fitting or count <= 0:
        return []
    out = []
    for number in range(count):
        zone = fitting[int(rng.integers(len(fitting)))]
        stay = zone.loitering_time + float(rng.uniform(*extra_s))
        arrival = float(rng.uniform(1.0, max(1.0, duration_s - stay - _LOITER_WALK_S - 1.0)))
        outside, door = _way_in(rng, view)
        stop = (_spot(rng, zone), stay)
        shirt, pants, skin, hair = _palette(rng)
        legs = walk_legs(_round_trip(outside, door, [stop]), arrival, speed_m_s)
        if legs[-1].t1 > duration_s - 1.0:
            continue
        out.append(Shopper(f"{view.camera}-l{number:03d}", tuple(legs), shirt, pants, skin, hair, float(rng.uniform(0.88, 1.1)),
                           float(rng.uniform(0.24, 0.32)), False, float(rng.uniform(0, 2 * math.pi))))
    return out


# --------------------------------------------------------------------------------------------
# Lighting


@dataclass(frozen=True)
class Lighting:
    """Global brightness over time: a slow drift plus steps (lamps switching, clouds), each ramped."""

    steps: tuple[tuple[float, float], ...]  # (time s, gain change)
    drift: float = 0.05
    drift_period_s: float = 131.0
    ramp_s: float = 0.8

    def gain(self, t: float) -> float:
        g = 1.0 + self.drift * math.sin(2 * math.pi * t / self.drift_period_s)
        for at, delta in self.steps:
            g += delta * min(1.0, max(0.0, (t - at) / self.ramp_s))
        return g


def plan_lighting(duration_s: float, seed: int, camera: str, steps_per_minute: float = 0.5, step: float = 0.2) -> Lighting:
    rng = np.random.default_rng(_derive_seed(seed, camera, "light"))
    n = rng.poisson(steps_per_minute * duration_s / 60.0)
    level = 0.0
    steps = []
    for at in np.sort(rng.uniform(0, duration_s, n)):
        delta = -step if level > 0 else step if level < 0 else float(rng.choice([-step, step]))
        level += delta
        steps.append((float(at), float(delta)))
    return Lighting(tuple(steps))


# --------------------------------------------------------------------------------------------
# Scene


def _draw_store(view: CameraView, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    sx, sy = width / _BASE_W, height / _BASE_H
    rng = np.random.default_rng(_derive_seed(view.seed, view.camera, "store"))
    P = lambda x, y: (round(x * sx), round(y * sy))  # noqa: E731
    img = np.zeros((height, width, 3), np.uint8)
    wall = np.array([rng.integers(190, 235), rng.integers(185, 230), rng.integers(170, 220)], np.float32)
    top = round(view.shelf_top * sy)
    img[:top] = np.clip(wall * np.linspace(0.85, 1.02, top, dtype=np.float32)[:, None, None], 0, 255).astype(np.uint8)
    floor = tuple(int(c) for c in rng.integers(150, 200, 3))
    cv2.rectangle(img, P(0, view.shelf_top), P(_BASE_W, _BASE_H), floor, -1)
    grout = tuple(max(0, c - 22) for c in floor)
    for k in range(-14, 15):  # floor tiles converging to a vanishing point
        xb = 640 + k * 140
        t = (view.shelf_top - HORIZON_Y) / (_BASE_H - HORIZON_Y)
        cv2.line(img, P(640 + (xb - 640) * t, view.shelf_top), P(xb, _BASE_H), grout, max(1, round(2 * sy)), cv2.LINE_AA)
    y = view.shelf_top
    while y < _BASE_H:
        y += 0.18 * (y - HORIZON_Y)
        cv2.line(img, P(0, y), P(_BASE_W, y), grout, max(1, round(2 * sy)), cv2.LINE_AA)
    # shelf wall: uprights, boards and rows of products
    cv2.rectangle(img, P(20, 30), P(1260, view.shelf_top - 4), (90, 90, 96), -1)
    for shelf_y in np.linspace(70, view.shelf_top - 12, 5):
        cv2.rectangle(img, P(20, shelf_y), P(1260, shelf_y + 6), (200, 200, 205), -1)
        x = 26.0
        while x < 1250:
            w = float(rng.uniform(12, 30))
            h = float(rng.uniform(18, 34))
            colour = tuple(int(c) for c in rng.integers(30, 250, 3))
            cv2.rectangle(img, P(x, shelf_y - h), P(x + w, shelf_y - 1), colour, -1)
            x += w + float(rng.uniform(1, 4))
    # entrance: a bright doorway band at the entrance side
    door_x = (0, 40) if not view.mirrored else (_BASE_W - 40, _BASE_W)
    cv2.rectangle(img, P(door_x[0], view.entrance_y[0] - 260), P(door_x[1], _BASE_H), (225, 235, 240), -1)
    # promo stand and checkout counter (behind the people standing at them)
    x0, y0, x1, y1 = view.promo_stand
    cv2.rectangle(img, P(x0, y0), P(x1, y1), (40, 40, 200), -1)
    cv2.rectangle(img, P(x0 + 8, y0 + 8), P(x1 - 8, y0 + 30), (240, 220, 40), -1)
    cv2.putText(img, "SALE", P(x0 + 14, y0 + 27), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * sy, (40, 40, 200), max(1, round(2 * sy)), cv2.LINE_AA)
    x0, y0, x1, y1 = view.checkout_counter
    cv2.rectangle(img, P(x0, y0), P(x1, y1), (120, 110, 100), -1)
    cv2.rectangle(img, P(x0, y0), P(x1, y0 + 12), (70, 70, 70), -1)
    cv2.rectangle(img, P(x0 + 40, y0 - 40), P(x0 + 90, y0), (40, 40, 45), -1)  # till
    return img


@dataclass
class _Placed:
    shopper: Shopper
    foot: tuple[float, float]  # output px
    height: float  # output px
    walking: bool
    stride: float
    box: tuple[float, float, float, float]  # unclipped, output px


class SupermarketScene:
    """Frame `i` of one camera's shoppers as RGB; a pure function of the frame time.

    Has what `footage._encode` needs (`fps`, `width`, `height`, `start_utc`, `idle_key`,
    `render_i420`), so the existing writer encodes it.
    """

    def __init__(
        self,
        view: CameraView,
        shoppers: Sequence[Shopper],
        start_utc: datetime,
        fps: float = DEFAULT_FPS,
        size: tuple[int, int] = DEFAULT_SIZE,
        *,
        lighting: Lighting | None = None,
        sensor_noise: float = 2.0,
    ) -> None:
        self.view = view
        self.shoppers = list(shoppers)
        self.start_utc = _utc(start_utc)
        self.fps = float(fps)
        self.width, self.height = size
        if self.width % 2 or self.height % 2:
            raise ValueError(f"frame size {size} must be even for yuv420p")
        self.sx, self.sy = self.width / _BASE_W, self.height / _BASE_H
        self.background = _draw_store(view, size)
        self.lighting = lighting if lighting is not None else Lighting(())
        self.sensor_noise = float(sensor_noise)
        self._noise: list[tuple[np.ndarray, np.ndarray]] = []
        if self.sensor_noise > 0:
            rng = np.random.default_rng(_derive_seed(view.seed, view.camera, "noise"))
            for _ in range(8):
                n = np.clip(rng.normal(0, self.sensor_noise, (self.height, self.width, 1)), -60, 60).round().astype(np.int16)
                n = np.repeat(n, 3, axis=2)
                self._noise.append((np.clip(n, 0, None).astype(np.uint8), np.clip(-n, 0, None).astype(np.uint8)))

    def frame_time(self, index: int) -> float:
        return index / self.fps

    def placed(self, t: float) -> list[_Placed]:
        """Shoppers in view at time t, farthest first (the drawing order), with their boxes."""
        out = []
        for s in self.shoppers:
            if not s.t_entry <= t < s.t_exit:
                continue
            x, y, walking, walked = s.foot(t)
            if not walking and not s.still:  # people waiting sway a little
                x += 2.0 * math.sin(2 * math.pi * t / 2.7 + s.sway_phase)
            h = person_height(y) * s.scale * self.sy
            fx, fy = x * self.sx, y * self.sy
            half = 0.5 * s.width * h + 0.06 * h  # shoulders plus arms
            box = (fx - half, fy - h, fx + half, fy + 0.01 * h)
            stride = walked / max(1.0, 0.45 * person_height(y)) * math.pi
            out.append(_Placed(s, (fx, fy), h, walking, stride, box))
        out.sort(key=lambda p: p.foot[1])
        return out

    def _draw(self, img: np.ndarray, p: _Placed) -> None:
        s, h = p.shopper, p.height
        fx, fy = p.foot
        P = lambda dx, dy: (round(fx + dx * h), round(fy - dy * h))  # noqa: E731  (dy: up from the feet, in heights)
        thick = lambda k: max(1, round(k * h))  # noqa: E731
        shoulder = 0.5 * s.width
        swing = math.sin(p.stride) if p.walking else 0.0
        # shadow on the floor
        cv2.ellipse(img, P(0, 0), (max(1, round(shoulder * 1.3 * h)), max(1, round(0.035 * h))), 0, 0, 360, (70, 70, 70), -1, cv2.LINE_AA)
        for side in (-1, 1):  # legs
            cv2.line(img, P(side * 0.06, 0.5), P(side * 0.06 + 0.12 * swing * side, 0.02), s.pants, thick(0.09), cv2.LINE_AA)
        torso = np.array([P(-shoulder, 0.82), P(shoulder, 0.82), P(shoulder * 0.8, 0.48), P(-shoulder * 0.8, 0.48)], np.int32)
        cv2.fillPoly(img, [torso], s.shirt, cv2.LINE_AA)
        for side in (-1, 1):  # arms
            cv2.line(img, P(side * shoulder * 0.95, 0.8), P(side * (shoulder + 0.03) - 0.08 * swing * side, 0.5), s.shirt, thick(0.07), cv2.LINE_AA)
            cv2.circle(img, P(side * (shoulder + 0.03) - 0.08 * swing * side, 0.48), thick(0.03), s.skin, -1, cv2.LINE_AA)
        cv2.line(img, P(0, 0.82), P(0, 0.87), s.skin, thick(0.06))
        cv2.circle(img, P(0, 0.925), thick(0.07), s.skin, -1, cv2.LINE_AA)
        cv2.ellipse(img, P(0, 0.95), (thick(0.072), thick(0.05)), 0, 180, 360, s.hair, -1, cv2.LINE_AA)

    def idle_key(self, index: int) -> int | None:
        return None  # lighting drifts and noise moves: no two frames are the same

    def render(self, index: int) -> np.ndarray:
        t = self.frame_time(index)
        img = self.background.copy()
        for p in self.placed(t):
            self._draw(img, p)
        gain = self.lighting.gain(t)
        if abs(gain - 1.0) > 1e-4:
            lut = np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
            img = cv2.LUT(img, lut)
        if self._noise:
            pos, neg = self._noise[index % len(self._noise)]
            img = cv2.subtract(cv2.add(img, pos), neg)
        return img

    def render_i420(self, index: int) -> np.ndarray:
        return cv2.cvtColor(self.render(index), cv2.COLOR_RGB2YUV_I420)

    # -- ground truth ------------------------------------------------------------------------

    def truth_boxes(self, frames: int) -> pl.DataFrame:
        rows: dict[str, list] = {name: [] for name in BOX_SCHEMA.names()}
        for index in range(frames):
            t = self.frame_time(index)
            placed = self.placed(t)
            ts = self.start_utc + timedelta(microseconds=round(t * 1e6))
            for k, p in enumerate(placed):
                x1, y1, x2, y2 = p.box
                cx1, cy1, cx2, cy2 = max(0.0, x1), max(0.0, y1), min(float(self.width), x2), min(float(self.height), y2)
                if cx2 - cx1 < 1 or cy2 - cy1 < 1:
                    continue
                visibility = _visible_share((cx1, cy1, cx2, cy2), [q.box for q in placed[k + 1 :]])
                for name, value in zip(
                    BOX_SCHEMA.names(),
                    (self.view.camera, p.shopper.person, index, ts, cx1, cy1, cx2, cy2, p.foot[0], p.foot[1], visibility),
                ):
                    rows[name].append(value)
        return pl.DataFrame(rows, schema=BOX_SCHEMA)


def _visible_share(box: tuple[float, float, float, float], nearer: Sequence[tuple[float, float, float, float]]) -> float:
    """Share of `box` not covered by the `nearer` boxes (exact union area on a coarse grid)."""
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    if not nearer or area <= 0:
        return 1.0
    n = 24
    xs = np.linspace(x1, x2, n, endpoint=False) + (x2 - x1) / (2 * n)
    ys = np.linspace(y1, y2, n, endpoint=False) + (y2 - y1) / (2 * n)
    gx, gy = np.meshgrid(xs, ys)
    covered = np.zeros_like(gx, bool)
    for a1, b1, a2, b2 in nearer:
        covered |= (gx >= a1) & (gx < a2) & (gy >= b1) & (gy < b2)
    return float(1.0 - covered.mean())


# --------------------------------------------------------------------------------------------
# Ground truth of zones


def _inside_runs(frames: Sequence[int], inside: Sequence[bool]) -> list[tuple[int, int]]:
    """(first, last) row of each run of consecutive frames inside."""
    runs, start = [], None
    for k in range(len(frames) + 1):
        flag = k < len(frames) and inside[k]
        gap = k < len(frames) and k > 0 and frames[k] != frames[k - 1] + 1
        if start is not None and (not flag or gap):
            runs.append((start, k - 1))
            start = None
        if flag and start is None:
            start = k
    return runs


def visits_from_runs(runs: Sequence[tuple[int, int]], ts: Sequence[datetime], inertia: int,
                     exit_debounce_s: float) -> list[tuple[datetime, datetime]]:
    """(enter, exit) of the visits the product's definition makes of one person's runs inside one
    zone (README "Zones"): runs at most `exit_debounce_s` apart are one visit, which starts at
    the first of its runs at least `inertia` frames long and ends at its last frame inside."""
    visits, group = [], []
    for run in [*runs, None]:
        if run is not None and group and (ts[run[0]] - ts[group[-1][1]]).total_seconds() <= exit_debounce_s:
            group.append(run)
            continue
        qualifying = [r for r in group if r[1] - r[0] + 1 >= inertia]
        if qualifying:
            visits.append((ts[qualifying[0][0]], ts[group[-1][1]]))
        group = [run] if run is not None else []
    return visits


def zone_truth(boxes: pl.DataFrame, view: CameraView, size: tuple[int, int],
               exit_debounce_s: float = DEFAULT_EXIT_DEBOUNCE_SECONDS) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(zone_visits, loitering, footfall) from the true foot points, with the product's visit rule.

    `boxes` are one camera's `truth_boxes` for frames of `size` (w, h). A visit is what the zone
    analytics would report for a perfectly tracked person (visits_from_runs); frame_by_frame_visits
    gives the raw presence.
    """
    visits, loitering, footfall = [], [], []
    to_base_x, to_base_y = _BASE_W / size[0], _BASE_H / size[1]
    for (person,), rows in boxes.sort("frame").group_by(["person"], maintain_order=True):
        frames = rows["frame"].to_list()
        ts = rows["ts"].to_list()
        xs = (rows["foot_x"].to_numpy() * to_base_x).tolist()
        ys = (rows["foot_y"].to_numpy() * to_base_y).tolist()
        for zone in view.zones:
            runs = _inside_runs(frames, [zone.contains(x, y) for x, y in zip(xs, ys)])
            for enter, exit_ in visits_from_runs(runs, ts, zone.inertia, exit_debounce_s):
                dwell = (exit_ - enter).total_seconds()
                visits.append((view.camera, person, zone.name, zone.kind, enter, exit_, dwell))
                if dwell >= zone.loitering_time:
                    alert = enter + timedelta(seconds=zone.loitering_time)
                    loitering.append((view.camera, person, zone.name, enter, alert, dwell))
        entrance = view.zone("entrance")
        ins = [k for k, (x, y) in enumerate(zip(xs, ys)) if entrance.contains(x, y)]
        if ins:
            footfall.append((view.camera, person, ts[ins[0]], "in"))
            footfall.append((view.camera, person, ts[ins[-1]], "out"))
    return (
        pl.DataFrame(visits, schema=VISIT_SCHEMA, orient="row"),
        pl.DataFrame(loitering, schema=LOITERING_SCHEMA, orient="row"),
        pl.DataFrame(footfall, schema=FOOTFALL_SCHEMA, orient="row"),
    )


def frame_by_frame_visits(boxes: pl.DataFrame, view: CameraView, size: tuple[int, int]) -> pl.DataFrame:
    """The zone visits the truth counted before it applied the visit rule: every frame inside, no
    inertia, no debounce (older benchmark figures were scored against these)."""
    raw_view = replace(view, zones=tuple(replace(zone, inertia=1) for zone in view.zones))
    return zone_truth(boxes, raw_view, size, exit_debounce_s=0.0)[0]


# --------------------------------------------------------------------------------------------
# Writing footage and ground truth


@dataclass
class SupermarketTruth:
    """Ground truth of some cameras' footage (see module docstring); plain data frames and a dict."""

    boxes: pl.DataFrame
    zone_visits: pl.DataFrame
    loitering: pl.DataFrame
    footfall: pl.DataFrame
    zone_config: dict = field(default_factory=dict)  # {"cameras": {camera: {"detect": ..., "zones": ...}}}

    @classmethod
    def concat(cls, parts: Sequence[SupermarketTruth]) -> SupermarketTruth:
        config: dict = {"cameras": {}}
        for part in parts:
            config["cameras"].update(part.zone_config.get("cameras", {}))
        return cls(
            pl.concat([p.boxes for p in parts]) if parts else pl.DataFrame(schema=BOX_SCHEMA),
            pl.concat([p.zone_visits for p in parts]) if parts else pl.DataFrame(schema=VISIT_SCHEMA),
            pl.concat([p.loitering for p in parts]) if parts else pl.DataFrame(schema=LOITERING_SCHEMA),
            pl.concat([p.footfall for p in parts]) if parts else pl.DataFrame(schema=FOOTFALL_SCHEMA),
            config,
        )

    def write(self, folder: Path) -> Path:
        """boxes/zone_visits/loitering/footfall as Parquet and zones.yaml (Frigate-shaped), each atomically."""
        import os

        import yaml

        folder = Path(folder)
        for name in ("boxes", "zone_visits", "loitering", "footfall"):
            target = folder / f"{name}.parquet"
            tmp = _atomic_target(target)
            try:
                getattr(self, name).write_parquet(tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        target = folder / "zones.yaml"
        tmp = _atomic_target(target)
        try:
            tmp.write_text(yaml.safe_dump(self.zone_config, sort_keys=False))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return folder


def scene_for(
    camera: str,
    index: int,
    start_utc: datetime,
    duration_s: float,
    seed: int,
    *,
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    shoppers_per_minute: float = 1.5,
    still_shoppers: int = 1,
    light_steps_per_minute: float = 0.5,
    sensor_noise: float = 2.0,
) -> SupermarketScene:
    """The scene of camera number `index`: its view, shoppers and lighting, all from (seed, camera)."""
    view = camera_view(camera, index, seed)
    shoppers = plan_shoppers(view, duration_s, seed, shoppers_per_minute=shoppers_per_minute, still_shoppers=still_shoppers)
    lighting = plan_lighting(duration_s, seed, camera, light_steps_per_minute)
    return SupermarketScene(view, shoppers, start_utc, fps, size, lighting=lighting, sensor_noise=sensor_noise)


def scene_truth(scene: SupermarketScene, duration_s: float) -> SupermarketTruth:
    boxes = scene.truth_boxes(_frame_count(duration_s, scene.fps))
    visits, loitering, footfall = zone_truth(boxes, scene.view, (scene.width, scene.height))
    config = {
        "cameras": {
            scene.view.camera: {
                "detect": {"width": scene.width, "height": scene.height, "fps": scene.fps},
                "zones": scene.view.frigate_zones(),
            }
        }
    }
    return SupermarketTruth(boxes, visits, loitering, footfall, config)


def render_scene(scene: SupermarketScene, out_path: Path, duration_s: float, *, preset: str = "ultrafast", crf: int = 23, keyframe_s: float = 10.0) -> Path:
    """One H.264 MP4 (yuv420p) of the scene from its start, written atomically by the shop footage writer."""
    return _encode(scene, Path(out_path), 0, _frame_count(duration_s, scene.fps), EncodeOptions(preset=preset, crf=crf, keyframe_s=keyframe_s))


def iter_scene_frames(scene: SupermarketScene, duration_s: float):
    """(timestamp, RGB frame) pairs without encoding: for fast tests of the tracker."""
    for index in range(_frame_count(duration_s, scene.fps)):
        yield scene.start_utc + timedelta(microseconds=round(index / scene.fps * 1e6)), scene.render(index)


def write_supermarket_day(
    footage_root: Path,
    shop,
    day: date,
    layout: Layout = "plain",
    *,
    cameras: Sequence[str] | None = None,
    start: time | None = None,
    duration_s: float = 600.0,
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    segment_s: float = 10.0,
    shoppers_per_minute: float = 1.5,
    still_shoppers: int = 1,
    sensor_noise: float = 2.0,
    preset: str = "ultrafast",
    crf: int = 23,
    seed: int = 0,
) -> SupermarketTruth:
    """Footage of every camera of `shop` (a ShopConfig; or `cameras`) for one day, in the plain or
    Frigate layout, plus ground truth under `<root>/ground_truth/supermarket/<shop>/<day>/`."""
    footage_root = Path(footage_root)
    cameras = list(cameras if cameras is not None else shop.cameras)
    local_start = datetime.combine(day, start or shop.opening_time, tzinfo=shop.tz)
    start_utc = local_start.astimezone(UTC)
    parts = []
    for index, camera in enumerate(cameras):
        scene = scene_for(
            camera, index, start_utc, duration_s, _derive_seed(seed, shop.id, day.toordinal()),
            fps=fps, size=size, shoppers_per_minute=shoppers_per_minute, still_shoppers=still_shoppers, sensor_noise=sensor_noise,
        )  # fmt: skip
        if layout == "plain":
            render_scene(scene, plain_path(footage_root, camera, local_start), duration_s, preset=preset, crf=crf)
        elif layout == "frigate":
            options = EncodeOptions(preset=preset, crf=crf, keyframe_s=min(segment_s, 10.0))
            for seg_start, first, count in frigate_segments(start_utc, duration_s, fps, segment_s):
                _encode(scene, frigate_path(footage_root, camera, seg_start), first, count, options)
        else:
            raise ValueError(f"unknown layout {layout!r}; use 'plain' or 'frigate'")
        parts.append(scene_truth(scene, duration_s))
    truth = SupermarketTruth.concat(parts)
    truth.write(footage_root / "ground_truth" / "supermarket" / shop.id / day.isoformat())
    return truth
