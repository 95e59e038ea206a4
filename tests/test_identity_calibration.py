"""Thresholds from measured same/different-person distance distributions."""

from __future__ import annotations

import numpy as np

from watershop_dagster.identity.calibration import MAX_MARGIN, MIN_MARGIN, calibrate, distance_distributions


def test_distance_distributions_split_pairs_by_label():
    v = np.zeros((4, 128), np.float32)
    v[1, 0], v[2, 1], v[3, 1] = 0.3, 1.0, 1.2
    same, different = distance_distributions(v, ["a", "a", "b", "b"])
    assert sorted(np.round(same, 3)) == [0.2, 0.3]
    assert len(different) == 4 and different.min() > 0.9


def test_separated_distributions_put_the_threshold_in_the_gap():
    rng = np.random.default_rng(0)
    same, different = rng.normal(0.35, 0.04, 400), rng.normal(0.8, 0.05, 2000)
    cal = calibrate(same, different)
    assert cal.same_quantile < cal.face_match_distance < cal.different_quantile
    assert cal.false_match_rate < 0.01 and cal.false_split_rate < 0.05
    assert MIN_MARGIN <= cal.face_ambiguous_margin <= MAX_MARGIN


def test_overlapping_distributions_favour_precision():
    # same-person distances reach into the different-person ones: the threshold keeps false
    # matches at about 1% and accepts the splits; the ambiguous band widens
    rng = np.random.default_rng(1)
    same, different = rng.normal(0.5, 0.08, 400), rng.normal(0.65, 0.06, 2000)
    cal = calibrate(same, different)
    assert cal.face_match_distance == round(cal.different_quantile, 4)
    assert abs(cal.false_match_rate - 0.01) < 0.005
    assert cal.false_split_rate > 0.2
    assert cal.face_ambiguous_margin == MAX_MARGIN


def test_too_few_pairs_gives_no_calibration():
    assert calibrate(np.full(5, 0.3), np.full(500, 0.8)) is None
