"""The foreground detector's pure parts: the person-height model and a group's blob shared among its people."""

from __future__ import annotations

import numpy as np

from watershop_dagster.people.detector import (
    HeightModel,
    fit_height_line,
    mask_parts,
    share_group_blob,
    stands_like_a_person,
)


def test_height_line_fits_the_floor_and_ignores_children_and_merged_blobs():
    rng = np.random.default_rng(0)
    rows = rng.uniform(40, 170, 200)
    heights = 0.55 * rows - 20 + rng.normal(0, 1, 200)
    heights[:20] *= 0.65  # children
    heights[20:40] *= 1.8  # two people in one blob
    slope, intercept = fit_height_line(np.column_stack([rows, heights]), 0.2)
    assert abs(slope - 0.55) < 0.03 and abs(intercept + 20) < 3


def test_height_line_needs_spread_rows_and_a_floor_seen_from_above():
    same_row = np.column_stack([np.full(50, 100.0), np.linspace(30, 40, 50)])
    assert fit_height_line(same_row, 0.2) is None
    rows = np.linspace(20, 170, 50)
    assert fit_height_line(np.column_stack([rows, 200 - rows]), 0.2) is None  # shrinking towards the camera


def test_height_model_waits_for_samples_then_predicts():
    model = HeightModel(min_samples=10, refit_every=5)
    for row in np.linspace(50, 150, 9):
        model.add(row, 0.5 * row)
    assert model.expected(100) is None
    model.add(120, 60)
    assert abs(model.expected(100) - 50) < 1e-6


def test_a_group_blob_is_shared_by_pixels_so_boxes_follow_the_people():
    blob = np.zeros((40, 40), np.uint8)
    blob[0:40, 2:12] = 1  # left person
    blob[0:40, 17:27] = 1  # right person, who walked a pixel right of where the tracker predicts
    blob[18:22, 12:17] = 1  # their arms touch: one blob
    predicted = [(2, 0, 12, 40), (16, 0, 26, 40)]
    (left, right), rest = share_group_blob(blob, (0, 0), predicted)
    assert left[0] == 2 and left[2] <= 17
    assert right[0] >= 14 and right[2] == 27  # the box is the person's pixels, not the prediction
    assert rest.sum() < 10  # a bit of arm between them, no person


def test_a_share_taller_than_a_person_leaves_the_one_behind_untracked():
    blob = np.zeros((60, 30), np.uint8)
    blob[20:60, 5:25] = 1  # near person, 40 px tall, feet at row 60
    blob[0:21, 10:18] = 1  # someone behind, standing on the near person's head
    box = [(105, 200, 125, 260)]  # the track swallowed both
    (share,), rest = share_group_blob(blob, (100, 200), box, tallest=lambda foot_row: 44.0)
    assert share[3] == 260 and share[1] >= 260 - 44 - 1
    (part,) = mask_parts(rest, (100, 200), min_area=20)
    assert part[0] == 110 and part[1] == 200 and part[3] >= 14
    (unlimited,), rest = share_group_blob(blob, (100, 200), box)
    assert unlimited == (105.0, 200.0, 125.0, 260.0) and not rest.any()


def test_pixels_far_from_every_tracked_box_are_left_over():
    blob = np.zeros((30, 60), np.uint8)
    blob[0:30, 0:10] = 1
    blob[0:30, 45:55] = 1
    blob[10:12, 10:45] = 1  # a thin bridge
    (share,), rest = share_group_blob(blob, (0, 0), [(0, 0, 10, 30)])
    assert share[0] == 0 and share[2] <= 13
    parts = mask_parts(rest, (0, 0), min_area=50)
    assert len(parts) == 1 and parts[0][0] <= 45 and parts[0][0] + parts[0][2] == 55


def test_only_a_whole_standing_person_counts():
    assert stands_like_a_person((0, 0, 12, 30), 0.6, 32.0, 0.75, 0.25)
    assert not stands_like_a_person((0, 0, 12, 30), 0.6, None, 0.75, 0.25)  # height model not fitted yet
    assert not stands_like_a_person((0, 0, 12, 14), 0.6, 32.0, 0.75, 0.25)  # an arm or a head
    assert not stands_like_a_person((0, 0, 4, 30), 0.6, 32.0, 0.75, 0.25)  # a sliver along a box edge
    assert not stands_like_a_person((0, 0, 12, 30), 0.1, 32.0, 0.75, 0.25)  # mostly empty
