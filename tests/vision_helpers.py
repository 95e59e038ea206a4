"""Batch wrappers and metrics only the tests use (the pipeline streams through the same classes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np

from watershop_dagster.config import ShopConfig
from watershop_dagster.vision.footage import scan_footage
from watershop_dagster.vision.motion import Box
from watershop_dagster.vision.tracking import EmbeddingPolicy, EmbeddingSelector, FaceTracker, TrackParams


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between embeddings (the metric face_recognition's 0.6 tolerance uses)."""
    a = np.atleast_2d(np.asarray(a, np.float32))
    b = np.atleast_2d(np.asarray(b, np.float32))
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)


def link_tracks(frames: Sequence[tuple[float, Sequence[Box]]], params: TrackParams = TrackParams()) -> list[list[int]]:
    """Batch linking: for each (t, boxes) frame in time order, the track index of each box."""
    tracker = FaceTracker(params)
    out = []
    for t, boxes in frames:
        tracker.expire(t)
        out.append(tracker.update(t, boxes))
    return out


def select_embeddings(times: Sequence[float], qualities: Sequence[float], policy: EmbeddingPolicy = EmbeddingPolicy()) -> list[int]:
    """Indices of one track's detections (in time order) to embed under `policy`."""
    selector = EmbeddingSelector(policy)
    chosen: list[int] = []
    for i, (t, q) in enumerate(zip(times, qualities)):
        chosen.extend(selector.offer(i, t, q))
    chosen.extend(selector.close())
    return sorted(chosen)


def footage_day_keys(root: Path, shop: ShopConfig) -> set[date]:
    """Local dates (shop timezone) that have at least one valid footage file: partition keys."""
    tz = shop.tz
    good, _ = scan_footage(root, shop)
    return {f.start_utc.astimezone(tz).date() for f in good}
