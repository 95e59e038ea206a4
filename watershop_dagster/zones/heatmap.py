"""Heatmap PNG of where people stood: bottom-centre density over a still frame of the camera."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterable

import numpy as np

from watershop_dagster.zones.config import Zone

HEATMAP_CMAP = "inferno"
HEATMAP_ALPHA = 0.6
FIGURE_WIDTH_INCHES = 10
SMOOTH_CELLS = 0.8  # Gaussian sigma (cells) spreading a path one cell wide into a visible band
UPSAMPLE = 8  # the smoothed grid is drawn at this many pixels per cell, so its edges are smooth
MIN_SHARE = 0.03  # density below this share of the peak is left transparent


def density_image(grid: np.ndarray) -> np.ma.MaskedArray:
    """The grid smoothed and upsampled, masked where (nearly) nobody stood.

    Drawn with nearest-neighbour: matplotlib's bilinear interpolation of a masked array masks
    every pixel next to a masked cell, which erases a path one cell wide."""
    import cv2

    grid = np.asarray(grid, dtype=np.float64)
    if grid.size == 0 or grid.max() <= 0:
        return np.ma.masked_all(grid.shape)
    smooth = cv2.GaussianBlur(grid, (0, 0), SMOOTH_CELLS)
    fine = cv2.resize(smooth, (grid.shape[1] * UPSAMPLE, grid.shape[0] * UPSAMPLE), interpolation=cv2.INTER_CUBIC)
    return np.ma.masked_less_equal(fine, fine.max() * MIN_SHARE)


def render_heatmap_png(
    grid: np.ndarray, path: str | os.PathLike, still_frame: np.ndarray | None = None,
    zones: Iterable[Zone] = (), title: str | None = None,
) -> Path:
    """Write `grid` ((rows, cols), e.g. heatmap_grid()) as a PNG over `still_frame` (H x W x 3 RGB
    uint8, optional), outlining `zones`; written via a temp file and an atomic rename."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    height, width = still_frame.shape[:2] if still_frame is not None else (9, 16)
    figure = Figure(figsize=(FIGURE_WIDTH_INCHES, FIGURE_WIDTH_INCHES * height / width))
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    extent = (0, 1, 1, 0)  # relative frame coordinates, y down as in the image
    if still_frame is not None:
        axes.imshow(still_frame, extent=extent, aspect="auto")
    density = density_image(grid)
    if density.count():
        axes.imshow(density, extent=extent, aspect="auto", cmap=HEATMAP_CMAP,
                    alpha=HEATMAP_ALPHA if still_frame is not None else 1.0, interpolation="nearest")
    for zone in zones:
        closed = np.vstack([zone.polygon, zone.polygon[:1]])
        axes.plot(closed[:, 0], closed[:, 1], color="cyan", linewidth=1.5)
        axes.text(*zone.polygon.mean(axis=0), zone.name, color="cyan", fontsize=9, ha="center")
    if title:
        axes.text(0.01, 0.03, title, color="white", fontsize=11, transform=axes.transAxes,
                  bbox={"facecolor": "black", "alpha": 0.5, "linewidth": 0})
    axes.set_xlim(0, 1)
    axes.set_ylim(1, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        figure.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
