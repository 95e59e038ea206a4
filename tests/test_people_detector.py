"""Pure pieces of the foreground person detector (people/detector.py)."""

from __future__ import annotations

import numpy as np
import pytest

from watershop_dagster.people.detector import ForegroundDetector, _median, area_shrink


@pytest.mark.parametrize("size", [1, 2, 3, 50, 51, 6400, 6401])
def test_median_is_numpys(size):
    values = (np.random.default_rng(size).random(size) * 3).astype(np.float32)
    assert _median(values) == np.median(values)


def _detector_with_background(background: np.ndarray) -> ForegroundDetector:
    detector = ForegroundDetector()
    detector._bg = [background, np.full_like(background, 128), np.full_like(background, 128)]
    return detector


def test_relit_blob_is_the_background_brighter_and_a_person_is_not():
    rng = np.random.default_rng(0)
    background = (rng.random((60, 80)) * 100 + 50).astype(np.float32)
    detector = _detector_with_background(background)
    labels = np.zeros((60, 80), np.uint16)
    labels[10:40, 20:35] = 3
    box = (20, 10, 15, 30)
    lit = background * 1.3
    person = background.copy()
    person[10:40, 20:35] = (rng.random((30, 15)) * 100 + 50).astype(np.float32)
    flat = background.copy()
    flat[10:40, 20:35] = 90.0  # no texture: nothing to correlate
    assert detector._is_relit(lit, labels, 3, box)
    assert not detector._is_relit(person, labels, 3, box)
    assert not detector._is_relit(flat, labels, 3, box)
    assert not detector._is_relit(lit, labels, 4, box)  # no pixels of that blob


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 6])
def test_area_shrink_is_the_block_mean_within_one_grey_level(factor):
    plane = np.random.default_rng(factor).integers(0, 256, (72 * 12, 96 * 12), np.uint8)
    small = area_shrink(plane, factor)
    h, w = plane.shape[0] // factor, plane.shape[1] // factor
    block_mean = plane[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))
    assert small.shape == (h, w) and small.dtype == np.uint8
    assert np.abs(small - block_mean).max() <= 1.0
