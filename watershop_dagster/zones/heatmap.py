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
    density = np.ma.masked_less_equal(np.asarray(grid, dtype=float), 0)
    if density.count():
        axes.imshow(density, extent=extent, aspect="auto", cmap=HEATMAP_CMAP,
                    alpha=HEATMAP_ALPHA if still_frame is not None else 1.0, interpolation="bilinear")
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
