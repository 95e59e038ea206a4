"""Point-in-polygon for millions of points (a camera-day of bottom-centre points) with numpy."""

from __future__ import annotations

import numpy as np


def points_in_polygon(x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask: which (x, y) points lie inside `polygon` ((n, 2) array), by the even-odd rule.

    Points outside the polygon's bounding box are rejected first, so a small shelf zone costs only
    a few comparisons per point; the crossing test then runs once per edge over the candidates.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    inside = np.zeros(x.shape, dtype=bool)
    (xmin, ymin), (xmax, ymax) = polygon.min(axis=0), polygon.max(axis=0)
    candidates = np.flatnonzero((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
    if candidates.size == 0:
        return inside
    px, py = x[candidates], y[candidates]
    crossings = np.zeros(candidates.size, dtype=bool)
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for ax, ay, bx, by in zip(x0, y0, x1, y1):
        if ay == by:
            continue  # a horizontal edge never crosses the ray
        straddles = (ay > py) != (by > py)
        x_at_y = ax + (py - ay) * (bx - ax) / (by - ay)
        crossings ^= straddles & (px < x_at_y)
    inside[candidates] = crossings
    return inside
