"""The heatmap PNG shows a path one grid cell wide (bilinear interpolation of a masked grid erased it)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from watershop_dagster.zones import render_heatmap_png
from watershop_dagster.zones.heatmap import density_image


def test_a_path_one_cell_wide_is_drawn_over_the_still_frame(tmp_path):
    grid = np.zeros((36, 64))
    grid[30, 5:40] = 0.5  # a walk along one row
    grid[10, 40] = 8.0  # a long stop
    still = np.full((360, 640, 3), 200, np.uint8)
    png = Image.open(render_heatmap_png(grid, tmp_path / "heat.png", still_frame=still)).convert("RGB")
    pixels = np.asarray(png.resize((640, 360)), dtype=int)
    on_path = pixels[int(30.5 / 36 * 360), int(20.5 / 64 * 640)]
    at_stop = pixels[int(10.5 / 36 * 360), int(40.5 / 64 * 640)]
    away = pixels[int(20.5 / 36 * 360), int(55.5 / 64 * 640)]
    assert (away == 200).all()
    assert np.abs(on_path - 200).max() > 30 and np.abs(at_stop - 200).max() > 30


def test_an_empty_grid_has_no_density():
    assert density_image(np.zeros((36, 64))).count() == 0
