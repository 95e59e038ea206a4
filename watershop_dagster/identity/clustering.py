"""Grouping a day's faces into people: one representative vector per track, then clusters of tracks.

1. **Within a track** (a track is one person): `track_representatives` drops embeddings farther
   than the match threshold from the track's medoid (a bad frame), and averages the rest,
   weighted by face quality, into one representative vector per track.
2. **Across tracks**: `cluster_tracks` — average-linkage agglomerative clustering of the track
   representatives, cut at `thresholds.face_match_distance`, with a cannot-link constraint: two
   tracks of one camera that overlap in time are two people, and so are two tracks that each
   clearly match a different known person or registry customer (`identity_conflicts`). A
   cluster is a *day-person*.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from watershop_dagster.catalog import EMBEDDING, FACE_TRACKS, TS
from watershop_dagster.vision.faces import EMBEDDING_DIM

#: tracks of one camera overlapping longer than this are two different people
OVERLAP_TOLERANCE_S = 0.5


def matrix(series: pl.Series) -> np.ndarray:
    """An Array(Float32, 128) column without nulls as an (n, 128) float32 array."""
    if series.len() == 0:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    return np.asarray(series.to_numpy(), np.float32).reshape(series.len(), EMBEDDING_DIM)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a (n, d) and b (m, d): (n, m) float64."""
    a = np.asarray(a, np.float64).reshape(-1, EMBEDDING_DIM)
    b = np.asarray(b, np.float64).reshape(-1, EMBEDDING_DIM)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def _epoch_s(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("us").cast(pl.Float64) / 1e6


# --------------------------------------------------------------------------------------------
# within a track


#: a face_tracks row with the track's representative embedding and its weight
TRACK_REPS_SCHEMA = pl.Schema({**FACE_TRACKS.schema, "weight": pl.Float64, "embedding": EMBEDDING})


def track_representatives(
    embeddings: pl.DataFrame, tracks: pl.DataFrame | None = None, outlier_distance: float = 0.5
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per track with its representative embedding, the embeddings with an `inlier` flag).

    Embeddings farther than `outlier_distance` from their track's medoid are outliers (unless
    that would leave none); the representative is the quality-weighted mean of the inliers and
    `weight` the sum of their qualities. Track spans come from `tracks` (face_tracks) when given,
    else from the embeddings' times. Rows are ordered by (start_utc, track_id).
    """
    if embeddings.is_empty():
        return pl.DataFrame(schema=TRACK_REPS_SCHEMA), embeddings.with_columns(pl.lit(True).alias("inlier"))
    embeddings = embeddings.sort("track_id", "ts_utc", "embedding_id")
    vectors = matrix(embeddings["embedding"])
    quality = np.nan_to_num(embeddings["quality"].to_numpy().astype(np.float64), nan=0.0)
    weights_all = np.maximum(quality, 0.05)
    track_ids = embeddings["track_id"].to_list()
    inlier = np.ones(len(track_ids), bool)
    reps, weights, ids = [], [], []
    start = 0
    n = len(track_ids)
    while start < n:
        stop = start
        while stop < n and track_ids[stop] == track_ids[start]:
            stop += 1
        block = vectors[start:stop]
        if stop - start >= 3:
            d = distances(block, block)
            medoid = int(np.argmin(d.sum(1)))
            keep = d[medoid] <= outlier_distance
            if keep.any():
                inlier[start:stop] = keep
        w = weights_all[start:stop] * inlier[start:stop]
        reps.append((block * w[:, None]).sum(0) / w.sum())
        weights.append(float(quality[start:stop][inlier[start:stop]].clip(0.05).sum()))
        ids.append(track_ids[start])
        start = stop
    flagged = embeddings.with_columns(pl.Series("inlier", inlier))
    stats = flagged.group_by("track_id").agg(
        pl.col("camera").first(),
        pl.col("ts_utc").min().alias("_first"),
        pl.col("ts_utc").max().alias("_last"),
        pl.len().cast(pl.Int32).alias("n_embeddings"),
        pl.col("quality").max().alias("best_quality"),
    )
    rep_frame = pl.DataFrame(
        {"track_id": ids, "weight": weights, "embedding": np.asarray(reps, np.float32).reshape(-1, EMBEDDING_DIM)},
        schema={"track_id": pl.Utf8, "weight": pl.Float64, "embedding": EMBEDDING},
    )
    out = stats.join(rep_frame, on="track_id")
    if tracks is not None and not tracks.is_empty():
        spans = tracks.select("track_id", "start_utc", "end_utc", "n_detections")
        out = out.join(spans, on="track_id", how="left")
    else:
        out = out.with_columns(pl.lit(None, TS).alias("start_utc"), pl.lit(None, TS).alias("end_utc"),
                               pl.lit(None, pl.Int32).alias("n_detections"))
    out = out.with_columns(
        pl.coalesce("start_utc", "_first").alias("start_utc"),
        pl.coalesce("end_utc", "_last").alias("end_utc"),
        pl.coalesce("n_detections", "n_embeddings").cast(pl.Int32).alias("n_detections"),
    )
    out = out.select(list(TRACK_REPS_SCHEMA)).cast(dict(TRACK_REPS_SCHEMA)).sort("start_utc", "track_id")
    return out, flagged


# --------------------------------------------------------------------------------------------
# across tracks


def cannot_link(reps: pl.DataFrame, tolerance_s: float = OVERLAP_TOLERANCE_S) -> np.ndarray:
    """(n, n) bool: tracks of the same camera overlapping in time by more than tolerance_s."""
    n = reps.height
    if n == 0:
        return np.zeros((0, 0), bool)
    start = reps.select(_epoch_s("start_utc")).to_series().to_numpy()
    end = reps.select(_epoch_s("end_utc")).to_series().to_numpy()
    cams = reps["camera"].to_numpy()
    overlap = np.minimum(end[:, None], end[None, :]) - np.maximum(start[:, None], start[None, :])
    out = (overlap > tolerance_s) & (cams[:, None] == cams[None, :])
    np.fill_diagonal(out, False)
    return out


def agglomerate(dist: np.ndarray, threshold: float, forbid: np.ndarray | None = None) -> np.ndarray:
    """Average-linkage agglomerative clustering cut at `threshold`, never joining a `forbid` pair.

    Deterministic (ties: lowest indices); labels are numbered in order of each cluster's first
    member. Two clusters merge while their mean pairwise distance is below the threshold and no
    pair across them is forbidden.
    """
    n = dist.shape[0]
    labels = np.arange(n)
    if n <= 1:
        return np.zeros(n, int)
    d = np.array(dist, np.float64, copy=True)
    if forbid is not None:
        d[forbid] = np.inf
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    active = np.ones(n, bool)
    while True:
        flat = int(np.argmin(d))
        i, j = divmod(flat, n)
        if not d[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        merged = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])  # inf stays inf: forbidden
        d[i, :] = merged
        d[:, i] = merged
        d[i, i] = np.inf
        d[j, :] = np.inf
        d[:, j] = np.inf
        size[i] += size[j]
        active[j] = False
        labels[labels == j] = i
    _, first = np.unique(labels, return_index=True)
    order = {lab: k for k, lab in enumerate(labels[np.sort(first)])}
    return np.array([order[lab] for lab in labels], int)


def identity_conflicts(d: np.ndarray, clear: float, separation: float) -> np.ndarray:
    """(n, n) bool: tracks that each clearly match a different identity — nearer than `clear`,
    and every other identity at least `separation` farther.

    d: (tracks, identities) distances to known people and registry customers. Two such tracks
    are two people even when their own vectors are close (a customer who resembles the staff
    member must not be clustered with them and vanish into the staff's visits). A track about
    equally near two identities (one person who got two ids) constrains nothing."""
    n = d.shape[0]
    if n == 0 or d.shape[1] == 0:
        return np.zeros((n, n), bool)
    ordered = np.sort(d, axis=1)
    runner_up = ordered[:, 1] if d.shape[1] > 1 else np.full(n, np.inf)
    nearest = np.argmin(d, axis=1)
    is_clear = (ordered[:, 0] < clear) & (runner_up - ordered[:, 0] >= separation)
    return is_clear[:, None] & is_clear[None, :] & (nearest[:, None] != nearest[None, :])


def cluster_tracks(reps: pl.DataFrame, threshold: float, forbid: np.ndarray | None = None) -> np.ndarray:
    """Day-person label per row of `reps` (track_representatives' output); `forbid`: more
    cannot-link pairs besides tracks overlapping in time (e.g. `identity_conflicts`)."""
    if reps.is_empty():
        return np.zeros(0, int)
    vectors = matrix(reps["embedding"])
    never = cannot_link(reps) if forbid is None else cannot_link(reps) | forbid
    return agglomerate(distances(vectors, vectors), threshold, never)
