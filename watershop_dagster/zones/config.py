"""Camera and zone settings in Frigate's shape, and their polygons resolved to relative coordinates.

A zone's `coordinates` follow Frigate: one string "x1,y1,x2,y2,...", or a list of "x,y" strings, or
(Watershop's addition) a list of [x, y] pairs. Values are relative to the frame (0-1) unless any value
is above 1, in which case all are pixels of the camera's detect size, as in Frigate's older configs.
Polygons are kept relative internally so footage of any resolution maps onto the same zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ZONE_KINDS = ("entrance", "aisle", "shelf", "checkout", "promo")
ZoneKind = Literal["entrance", "aisle", "shelf", "checkout", "promo"]
DEFAULT_INERTIA = 3
DEFAULT_DETECT_FPS = 5  # Frigate's default detect fps
MIN_POLYGON_AREA = 1e-6  # relative units: below this a polygon is a line or a point
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
ZoneName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]  # a lake value: no spaces or slashes

Coordinates = str | list[str] | list[list[float]] | list[tuple[float, float]]


class PolygonError(ValueError):
    """A zone polygon that cannot be used; the message says why (callers add shop/camera/zone)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectSettings(_Strict):
    """Frigate's `detect` block: the resolution pixel coordinates refer to, and the detect rate."""

    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    fps: float = Field(default=DEFAULT_DETECT_FPS, gt=0)


class ZoneSettings(_Strict):
    """One zone as written in watershop.yaml (Frigate's keys plus Watershop's kind and category)."""

    coordinates: Coordinates
    inertia: int = Field(default=DEFAULT_INERTIA, gt=0,
                         description="Consecutive frames inside before an entry counts")
    loitering_time: float = Field(default=0, ge=0,
                                  description="Seconds of continuous presence that raise a loitering event; 0: off")
    kind: ZoneKind = "aisle"
    category: str | None = Field(default=None, description="Product category, for joins with POS lines")


class CameraSettings(_Strict):
    detect: DetectSettings = Field(default_factory=DetectSettings)
    zones: dict[ZoneName, ZoneSettings] = Field(default_factory=dict)
    people: bool | None = Field(
        default=None, description="Track people on this camera (tracks, heatmap); unset: on when it has zones")

    @property
    def tracks_people(self) -> bool:
        return bool(self.zones) if self.people is None else self.people


@dataclass(frozen=True, eq=False)  # an array field: compare zones by identity, not element-wise
class Zone:
    """A zone ready for analytics: polygon as an (n, 2) array of relative x, y."""

    camera: str
    name: str
    kind: str
    category: str | None
    inertia: int
    loitering_time: float
    polygon: np.ndarray


def _numbers(coordinates: Coordinates) -> list[float]:
    if isinstance(coordinates, str):
        parts = coordinates.split(",")
    elif isinstance(coordinates, (list, tuple)):
        parts = []
        for point in coordinates:
            if isinstance(point, str):
                parts.extend(point.split(","))
            elif isinstance(point, (list, tuple)):
                if len(point) != 2:
                    raise PolygonError(f"point {list(point)} must have 2 values (x, y)")
                parts.extend(point)
            else:
                raise PolygonError(f"point {point!r} is neither 'x,y' nor [x, y]")
    else:
        raise PolygonError(f"coordinates must be a string or a list, got {type(coordinates).__name__}")
    values = []
    for part in parts:
        text = part.strip() if isinstance(part, str) else part
        if isinstance(text, bool):
            raise PolygonError(f"non-numeric coordinate {part!r}")
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise PolygonError(f"non-numeric coordinate {part!r}") from None
        if not math.isfinite(value):
            raise PolygonError(f"non-finite coordinate {part!r}")
        values.append(value)
    return values


def polygon_area(polygon: np.ndarray) -> float:
    """Unsigned shoelace area of an (n, 2) polygon."""
    x, y = polygon[:, 0], polygon[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def parse_polygon(coordinates: Coordinates, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Frigate coordinates -> (n, 2) relative polygon; PolygonError names what is wrong.

    Pixel coordinates (any value above 1, Frigate's rule) are whole numbers of the camera's detect
    width and height, which they need.
    """
    values = _numbers(coordinates)
    if len(values) % 2:
        raise PolygonError(f"odd number of values ({len(values)}): coordinates come in x,y pairs")
    points = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    if len(points) < 3:
        raise PolygonError(f"a polygon needs at least 3 points, got {len(points)}")
    if (points < 0).any():
        raise PolygonError("negative coordinate")
    if (points > 1).any():
        if not np.array_equal(points, np.round(points)):
            raise PolygonError("relative coordinates must be within 0-1 (pixel coordinates are whole numbers)")
        if not width or not height:
            raise PolygonError("pixel coordinates need the camera's detect width and height")
        if (points[:, 0] > width).any() or (points[:, 1] > height).any():
            raise PolygonError(f"pixel coordinates outside the {width}x{height} detect frame")
        points = points / np.array([width, height], dtype=np.float64)
    if polygon_area(points) < MIN_POLYGON_AREA:
        raise PolygonError("polygon has zero area (its points are on one line or repeated)")
    return points


def resolve_zones(camera: str, settings: CameraSettings) -> list[Zone]:
    """The camera's zones with relative polygons; PolygonError names camera and zone."""
    zones = []
    for name, zone in settings.zones.items():
        try:
            polygon = parse_polygon(zone.coordinates, settings.detect.width, settings.detect.height)
        except PolygonError as exc:
            raise PolygonError(f"camera {camera!r} zone {name!r}: {exc}") from None
        zones.append(Zone(camera, name, zone.kind, zone.category, zone.inertia, zone.loitering_time, polygon))
    return zones

