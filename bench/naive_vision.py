"""The original water-shop scripts' way of finding faces: the baseline bench_vision.py measures the
pipeline against (and tests/test_vision_pipeline.py checks). Not part of the shipped package."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from watershop_dagster.vision.decode import iter_frames
from watershop_dagster.vision.faces import EMBEDDING_DIM, face_models
from watershop_dagster.vision.footage import FootageFile


@dataclass
class NaiveResult:
    n_frames: int  # frames run through the face detector
    embeddings: np.ndarray  # (n, 128) float32
    ts_utc: list[datetime]  # time of each embedding's frame
    locations: list[tuple[int, int, int, int]]  # (top, right, bottom, left) of each embedding
    wall_s: float


def naive_process_video(footage: FootageFile, interval_s: float = 1.0) -> NaiveResult:
    """The water-shop scripts' approach: one frame every `interval_s`, full-frame HOG
    (face_recognition.face_locations, upsample 1) and face_encodings of every face found."""
    fr = face_models()
    wall0 = time.perf_counter()
    n = 0
    vectors: list[np.ndarray] = []
    stamps: list[datetime] = []
    locations: list[tuple[int, int, int, int]] = []
    for df in iter_frames(footage.path, footage.start_utc, max_rate=1.0 / interval_s):
        rgb = df.rgb()
        n += 1
        locs = fr.face_locations(rgb)
        if locs:
            for loc, enc in zip(locs, fr.face_encodings(rgb, locs)):
                vectors.append(np.asarray(enc, np.float32))
                stamps.append(df.ts_utc)
                locations.append(tuple(int(v) for v in loc))
    return NaiveResult(
        n_frames=n,
        embeddings=np.asarray(vectors, np.float32).reshape(-1, EMBEDDING_DIM),
        ts_utc=stamps,
        locations=locations,
        wall_s=time.perf_counter() - wall0,
    )
