"""Stable anonymous customer ids: group a day's faces into people and match them to the registry.

Pure functions first (arrays and DataFrames in, arrays and DataFrames out), then the ledger's
storage (lake partitions and the per-shop lock).

A day, step by step (`assign_identities`):

1. **Within a track** (a track is one person): `track_representatives` drops embeddings farther
   than the match threshold from the track's medoid (a bad frame), and averages the rest,
   weighted by face quality, into one representative vector per track.
2. **Across tracks**: `cluster_tracks` — average-linkage agglomerative clustering of the track
   representatives, cut at `thresholds.face_match_distance`, with a cannot-link constraint: two
   tracks of one camera that overlap in time are two people. A cluster is a *day-person*.
3. **Matching** each day-person to known people (photos) and to the shop's registry (exemplar
   embeddings of every customer in the ledger, from every day except the day being built).
   Distance of a day-person to a candidate = quality-weighted mean over its tracks of the
   track's minimum distance to the candidate's exemplars. Decisions (`decide`), with
   thr = face_match_distance and m = face_ambiguous_margin:
     * best known person closer than thr → ``known:<role>`` (staff never become customers);
     * this day was built before and the day-person's tracks belonged to a customer that still
       exists (same track ids, or — when the vision step was re-run and made new tracks — a
       clear match to that build's own exemplars) → that customer again (re-runs and backfills
       never renumber; `reused` is set);
     * best customer closer than thr - m → ``matched``;
     * best customer in [thr - m, thr + m) → ``ambiguous``: NOT merged — a new customer is
       created with ``ambiguous_with`` = the candidate, for review;
     * otherwise ``new``.
4. **Ids**: a new customer's id is ``c_`` + hash(shop, id salt, its first track id); the salt
   changes with every erasure of the shop (see `privacy.id_salt`), so an erased person can never
   get their old id back, even when the footage is processed again. Known VIP/blocked people
   get ``k_`` + hash(shop, person_key); staff get no customer id.
5. **Ledger rows** for the day: per customer seen, up to EXEMPLARS_PER_DAY diverse, good-quality
   embeddings (VIP/blocked: one sighting row without embedding).

The ledger (dataset ``customer_ledger``, one partition per shop and contribution day) is
append-only: building day D replaces only D's partition, never another day's rows, so a
customer created on another day keeps its id. The registry snapshot of day D
(`registry_snapshot`) is a pure function of the ledger rows of days <= D.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from watershop_dagster import lake
from watershop_dagster.config import Thresholds
from watershop_dagster.vision.faces import EMBEDDING_DIM

TS = pl.Datetime("us", "UTC")
EMBEDDING = pl.Array(pl.Float32, EMBEDDING_DIM)

LEDGER_DATASET = "customer_ledger"
REGISTRY_DATASET = "customer_registry"
IDENTITIES_DATASET = "face_identities"
RECOGNITION_DATASET = "recognition_results"

#: at most this many exemplars per customer are matched against and kept in a snapshot
MAX_EXEMPLARS = 10
#: a day adds at most this many exemplar rows per customer to the ledger
EXEMPLARS_PER_DAY = 3
#: exemplar candidates must reach this share of the customer's best face quality
EXEMPLAR_MIN_QUALITY_SHARE = 0.6
#: tracks of one camera overlapping longer than this are two different people
OVERLAP_TOLERANCE_S = 0.5

ROLE_CUSTOMER = "customer"
ROLE_STAFF = "staff"
ROLE_UNIDENTIFIED = "unidentified"
DECISION_MATCHED = "matched"
DECISION_NEW = "new"
DECISION_AMBIGUOUS = "ambiguous"
DECISION_UNIDENTIFIED = "unidentified"

LEDGER_SCHEMA = pl.Schema(
    {
        "customer_id": pl.Utf8,
        "role": pl.Utf8,  # customer | vip | blocked
        "person_key": pl.Utf8,  # role/name for known people, else null
        "created": pl.Boolean,  # this day created the customer
        "created_day": pl.Date,  # day whose build created the customer (null for known people)
        "created_from_track": pl.Utf8,
        "ambiguous_with": pl.Utf8,  # created by an ambiguous decision: the candidate it was not merged with
        "track_id": pl.Utf8,
        "embedding_id": pl.Utf8,
        "camera": pl.Utf8,
        "ts_utc": TS,
        "quality": pl.Float64,
        "embedding": EMBEDDING,  # null for known people's sighting rows and after retention
    }
)
CUSTOMER_REGISTRY_SCHEMA = pl.Schema(
    {
        "customer_id": pl.Utf8,
        "role": pl.Utf8,
        "person_key": pl.Utf8,
        "first_seen": pl.Date,
        "last_seen": pl.Date,
        "n_days_seen": pl.Int32,
        "created_day": pl.Date,
        "created_from_track": pl.Utf8,
        "ambiguous_with": pl.Utf8,
        "n_exemplars": pl.Int32,
        "exemplar_ids": pl.List(pl.Utf8),  # embedding_id of each exemplar
        "exemplar_days": pl.List(pl.Date),  # day each exemplar was seen (retention drops old ones)
        "exemplars": pl.List(EMBEDDING),
    }
)
FACE_IDENTITIES_SCHEMA = pl.Schema(
    {
        "track_id": pl.Utf8,
        "camera": pl.Utf8,
        "start_utc": TS,
        "end_utc": TS,
        "n_detections": pl.Int32,
        "n_embeddings": pl.Int32,
        "person_id": pl.Utf8,  # the day-person (cluster of tracks) this track belongs to
        "customer_id": pl.Utf8,  # null for staff and unidentified tracks
        "person_key": pl.Utf8,  # role/name of a known person, else null
        "role": pl.Utf8,  # customer | staff | vip | blocked | unidentified
        "decision": pl.Utf8,
        "distance": pl.Float64,  # day-person's distance to the assigned identity (null for new)
        "confidence": pl.Float64,
        "ambiguous": pl.Boolean,
    }
)
RECOGNITION_RESULTS_SCHEMA = pl.Schema(
    {
        "track_id": pl.Utf8,
        "camera": pl.Utf8,
        "start_utc": TS,
        "end_utc": TS,
        "n_embeddings": pl.Int32,
        "person_id": pl.Utf8,
        "n_person_tracks": pl.Int32,
        "best_match": pl.Utf8,  # nearest registry customer (other days' exemplars)
        "best_distance": pl.Float64,  # day-person level
        "track_distance": pl.Float64,  # this track's own distance to best_match
        "second_match": pl.Utf8,
        "second_distance": pl.Float64,
        "known_match": pl.Utf8,  # nearest known person (person_key)
        "known_distance": pl.Float64,
        "decision": pl.Utf8,  # matched | new | ambiguous | known:<role> | unidentified
        "ambiguous": pl.Boolean,  # a distance that decided lies within the margin of the threshold
        "reused": pl.Boolean,  # identity kept from an earlier build of this day
        "customer_id": pl.Utf8,
        "person_key": pl.Utf8,
        "role": pl.Utf8,
    }
)


# --------------------------------------------------------------------------------------------
# small helpers


def hid(*parts: object, size: int = 8) -> str:
    return hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=size).hexdigest()


def new_customer_id(shop_id: str, salt: str, track_id: str) -> str:
    """Deterministic id of a customer first created from `track_id` (salt: see privacy.id_salt)."""
    return "c_" + hid("customer", shop_id, salt, track_id, size=8)


def known_customer_id(shop_id: str, person_key: str) -> str:
    """Stable customer id of a known VIP/blocked person."""
    return "k_" + hid("known", shop_id, person_key, size=8)


def person_id_for(shop_id: str, day: date, first_track_id: str) -> str:
    return "p_" + hid("person", shop_id, day.isoformat(), first_track_id, size=8)


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
# 1. within a track


TRACK_REPS_SCHEMA = pl.Schema(
    {
        "track_id": pl.Utf8,
        "camera": pl.Utf8,
        "start_utc": TS,
        "end_utc": TS,
        "n_detections": pl.Int32,
        "n_embeddings": pl.Int32,
        "best_quality": pl.Float64,
        "weight": pl.Float64,
        "embedding": EMBEDDING,
    }
)


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
# 2. across tracks


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


def cluster_tracks(reps: pl.DataFrame, threshold: float) -> np.ndarray:
    """Day-person label per row of `reps` (track_representatives' output)."""
    if reps.is_empty():
        return np.zeros(0, int)
    vectors = matrix(reps["embedding"])
    return agglomerate(distances(vectors, vectors), threshold, cannot_link(reps))


# --------------------------------------------------------------------------------------------
# exemplars and candidate matching


def select_exemplars(
    vectors: np.ndarray,
    quality: np.ndarray,
    k: int = MAX_EXEMPLARS,
    min_quality_share: float = EXEMPLAR_MIN_QUALITY_SHARE,
    tiebreak: Sequence[str] | None = None,
) -> list[int]:
    """Indices of at most k high-quality, spread-out rows: the best face first, then greedily the
    candidate farthest from those chosen (farthest-point sampling) among faces of at least
    `min_quality_share` × the best quality. Deterministic (ties: `tiebreak` keys, then index)."""
    n = len(vectors)
    if n == 0 or k <= 0:
        return []
    quality = np.nan_to_num(np.asarray(quality, np.float64), nan=0.0)
    keys = list(tiebreak) if tiebreak is not None else [""] * n
    order = sorted(range(n), key=lambda i: (-quality[i], keys[i], i))
    best_q = quality[order[0]]
    pool = [i for i in order if quality[i] >= min_quality_share * best_q] or order[:1]
    if len(pool) <= k:
        return pool
    chosen = [pool[0]]
    d = distances(vectors[pool], vectors[pool])
    min_d = d[0].copy()
    taken = np.zeros(len(pool), bool)
    taken[0] = True
    while len(chosen) < k:
        score = np.where(taken, -1.0, min_d)
        nxt = int(np.argmax(score))  # first max: pool is ordered by quality, so ties prefer quality
        taken[nxt] = True
        chosen.append(pool[nxt])
        min_d = np.minimum(min_d, d[nxt])
    return chosen


@dataclass
class CandidateIndex:
    """Exemplar vectors grouped by candidate (customer id or known person_key)."""

    keys: list[str]  # one per candidate
    roles: list[str]
    vectors: np.ndarray  # (m, 128), rows grouped by candidate
    offsets: np.ndarray  # start row of each candidate; len(keys) + 1 entries
    info: dict[str, dict] = field(default_factory=dict)  # per candidate: created_day, created_from_track, ...

    @classmethod
    def empty(cls) -> CandidateIndex:
        return cls([], [], np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros(1, int))

    def __len__(self) -> int:
        return len(self.keys)

    def group_min(self, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_candidates): each query's distance to the candidate's nearest exemplar."""
        if len(self.keys) == 0 or len(queries) == 0:
            return np.full((len(queries), len(self.keys)), np.inf)
        d = distances(queries, self.vectors)
        return np.minimum.reduceat(d, self.offsets[:-1], axis=1)

    @classmethod
    def from_known(cls, known: pl.DataFrame) -> CandidateIndex:
        if known.is_empty():
            return cls.empty()
        known = known.sort("person_key", "photo")
        keys, roles, offsets, rows = [], [], [0], []
        for (key,), group in known.group_by("person_key", maintain_order=True):
            keys.append(key)
            roles.append(group["role"][0])
            rows.append(matrix(group["embedding"]))
            offsets.append(offsets[-1] + group.height)
        return cls(keys, roles, np.concatenate(rows), np.asarray(offsets))

    @classmethod
    def from_ledger(cls, ledger: pl.DataFrame, k: int = MAX_EXEMPLARS) -> CandidateIndex:
        """Up to k exemplars per customer of the ledger rows (role customer, embedding not null)."""
        info = ledger_info(ledger)
        rows = ledger.filter((pl.col("role") == ROLE_CUSTOMER) & pl.col("embedding").is_not_null())
        if rows.is_empty():
            return cls([], [], np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros(1, int), info)
        rows = rows.sort("customer_id", "embedding_id")
        keys, roles, offsets, blocks = [], [], [0], []
        for (key,), group in rows.group_by("customer_id", maintain_order=True):
            vectors = matrix(group["embedding"])
            pick = select_exemplars(vectors, group["quality"].to_numpy(), k, tiebreak=group["embedding_id"].to_list())
            keys.append(key)
            roles.append(ROLE_CUSTOMER)
            blocks.append(vectors[pick])
            offsets.append(offsets[-1] + len(pick))
        return cls(keys, roles, np.concatenate(blocks), np.asarray(offsets), info)


def ledger_info(ledger: pl.DataFrame) -> dict[str, dict]:
    """customer_id -> {role, person_key, created_day, created_from_track, ambiguous_with}."""
    if ledger.is_empty():
        return {}
    agg = ledger.group_by("customer_id").agg(
        pl.col("role").first(),
        pl.col("person_key").drop_nulls().first(),
        pl.col("created_day").drop_nulls().min(),
        pl.col("created_from_track").drop_nulls().sort().first(),
        pl.col("ambiguous_with").drop_nulls().sort().first(),
    )
    return {row.pop("customer_id"): row for row in agg.iter_rows(named=True)}


# --------------------------------------------------------------------------------------------
# 3. decisions


@dataclass(frozen=True)
class Decision:
    decision: str  # matched | new | ambiguous | known:<role>
    key: str | None  # customer id (matched / reused), person_key (known) or None (new id needed)
    role: str
    distance: float | None
    confidence: float
    ambiguous: bool
    reused: bool = False
    ambiguous_with: str | None = None


def match_confidence(distance: float, threshold: float) -> float:
    """1 at distance 0, 0.5 at the threshold, falling to 0 at √2 × threshold."""
    return float(np.clip(1.0 - 0.5 * (distance / threshold) ** 2, 0.0, 1.0))


def new_confidence(nearest: float, threshold: float) -> float:
    """How sure a 'new' customer is nobody known: 0.5 at the threshold, 1 at twice it or more."""
    if not math.isfinite(nearest):
        return 1.0
    return float(np.clip(0.5 + 0.5 * (nearest - threshold) / threshold, 0.5, 1.0))


def decide(
    known: tuple[str, str, float] | None,
    best: tuple[str, float] | None,
    thresholds: Thresholds,
    previous: tuple[str, str, str | None] | None = None,
) -> Decision:
    """The identity of one day-person.

    known: (person_key, role, distance) of the nearest known person; best: (customer_id,
    distance) of the nearest registry customer; previous: (customer_id, decision, ambiguous_with)
    from an earlier build of the same day, when that customer still exists.
    """
    thr, margin = thresholds.face_match_distance, thresholds.face_ambiguous_margin
    if known is not None and known[2] < thr:
        key, role, d = known
        return Decision(f"known:{role}", key, role, d, match_confidence(d, thr), d >= thr - margin)
    best_d = best[1] if best is not None else math.inf
    if previous is not None:
        cid, label, amb_with = previous
        if best is not None and best[0] == cid:
            d = best_d
        else:
            d = None
        if label == DECISION_MATCHED:
            conf = match_confidence(d, thr) if d is not None else 0.5
            return Decision(DECISION_MATCHED, cid, ROLE_CUSTOMER, d, conf, d is not None and abs(d - thr) < margin, True)
        conf = 0.4 if label == DECISION_AMBIGUOUS else new_confidence(best_d, thr)
        return Decision(label, cid, ROLE_CUSTOMER, None, conf, label == DECISION_AMBIGUOUS, True, amb_with)
    if best is not None and best_d < thr - margin:
        return Decision(DECISION_MATCHED, best[0], ROLE_CUSTOMER, best_d, match_confidence(best_d, thr), False)
    if best is not None and best_d < thr + margin:
        return Decision(DECISION_AMBIGUOUS, None, ROLE_CUSTOMER, None, 0.4, True, ambiguous_with=best[0])
    return Decision(DECISION_NEW, None, ROLE_CUSTOMER, None, new_confidence(best_d, thr), False)


# --------------------------------------------------------------------------------------------
# the day


@dataclass
class DayIdentities:
    identities: pl.DataFrame  # FACE_IDENTITIES_SCHEMA
    recognition: pl.DataFrame  # RECOGNITION_RESULTS_SCHEMA
    ledger_rows: pl.DataFrame  # LEDGER_SCHEMA: the day's contribution

    def count(self, column: str, value: str) -> int:
        return self.recognition.filter(pl.col(column) == value).height


def previous_assignments(identities: pl.DataFrame, ledger_day: pl.DataFrame) -> dict[str, str]:
    """track_id -> customer_id from an earlier build of the day (face_identities, then ledger rows)."""
    out: dict[str, str] = {}
    if not ledger_day.is_empty():
        for track, cid in ledger_day.filter(pl.col("role") == ROLE_CUSTOMER).select("track_id", "customer_id").iter_rows():
            if track is not None and cid is not None:
                out[track] = cid
    if not identities.is_empty():
        rows = identities.filter(pl.col("role") == ROLE_CUSTOMER).select("track_id", "customer_id")
        for track, cid in rows.iter_rows():
            if cid is not None:
                out[track] = cid
    return out


def assign_identities(
    shop_id: str,
    day: date,
    embeddings: pl.DataFrame,
    tracks: pl.DataFrame | None,
    known: pl.DataFrame,
    ledger_other: pl.DataFrame,
    thresholds: Thresholds,
    *,
    salt: str = "",
    previous: dict[str, str] | None = None,
    previous_ledger: pl.DataFrame | None = None,
    min_track_quality: float = 0.0,
) -> DayIdentities:
    """Everything `build_customer_registry` decides for one shop-day, without I/O.

    embeddings/tracks: the day's face_embeddings/face_tracks (all cameras); known: known people
    (KNOWN_PEOPLE_SCHEMA); ledger_other: ledger rows of every OTHER day of the shop; previous:
    track -> customer of an earlier build of this day (see previous_assignments) and
    previous_ledger that build's ledger rows (to keep labels and creation facts).
    Tracks whose best face quality is below `min_track_quality` are 'unidentified'.
    """
    thr = thresholds.face_match_distance
    previous = previous or {}
    previous_ledger = previous_ledger if previous_ledger is not None else pl.DataFrame(schema=LEDGER_SCHEMA)
    reps, flagged = track_representatives(embeddings, tracks, outlier_distance=thr)
    low = reps.filter(pl.col("best_quality") < min_track_quality)
    reps = reps.filter(pl.col("best_quality") >= min_track_quality)
    labels = cluster_tracks(reps, thr)
    reps = reps.with_columns(pl.Series("_label", labels, pl.Int64))
    rep_vectors = matrix(reps["embedding"]) if reps.height else np.zeros((0, EMBEDDING_DIM), np.float32)
    weights = reps["weight"].to_numpy() if reps.height else np.zeros(0)

    known_index = CandidateIndex.from_known(known)
    registry = CandidateIndex.from_ledger(ledger_other)
    d_known = known_index.group_min(rep_vectors)  # (tracks, known people)
    d_reg = registry.group_min(rep_vectors)  # (tracks, customers)
    existing = set(ledger_other["customer_id"].unique().to_list()) if not ledger_other.is_empty() else set()
    prev_info = ledger_info(previous_ledger)
    # the earlier build's own exemplars: people keep their ids even when the tracks were re-made
    prev_index = CandidateIndex.from_ledger(previous_ledger)
    d_prev = prev_index.group_min(rep_vectors)
    all_info = ledger_info(ledger_other) | {k: v for k, v in prev_info.items() if k not in existing}
    created_before = {
        cid: ("ambiguous" if info.get("ambiguous_with") else "new", info.get("ambiguous_with"))
        for cid, info in prev_info.items()
        if info.get("created_day") == day
    }

    track_rows: list[dict] = []
    ledger_parts: list[pl.DataFrame] = []
    track_ids = reps["track_id"].to_list()
    by_customer: dict[str, list[int]] = {}  # customer -> rep indices (for ledger rows)
    customer_meta: dict[str, dict] = {}
    known_seen: dict[str, list[int]] = {}
    registry_pos = {key: j for j, key in enumerate(registry.keys)}
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        idx = np.flatnonzero(labels == label)
        w = weights[idx]
        w = w / w.sum()
        first_track = track_ids[idx[0]]
        person = person_id_for(shop_id, day, first_track)
        known_best = None
        if len(known_index):
            dk = (d_known[idx] * w[:, None]).sum(0)
            j = int(np.argmin(dk))
            known_best = (known_index.keys[j], known_index.roles[j], float(dk[j]))
        best = second = None
        dr = None
        if len(registry):
            dr = (d_reg[idx] * w[:, None]).sum(0)
            order = np.argsort(dr, kind="stable")
            best = (registry.keys[order[0]], float(dr[order[0]]))
            if len(order) > 1:
                second = (registry.keys[order[1]], float(dr[order[1]]))
        prev = None
        votes: dict[str, int] = {}
        for i in idx:
            cid = previous.get(track_ids[i])
            if cid is not None and (cid in existing or cid in created_before):
                votes[cid] = votes.get(cid, 0) + 1
        if not votes and len(prev_index):
            dp = (d_prev[idx] * w[:, None]).sum(0)
            j = int(np.argmin(dp))
            cid = prev_index.keys[j]
            if dp[j] < thr - thresholds.face_ambiguous_margin and (cid in existing or cid in created_before):
                votes[cid] = 1
        if votes:
            cid = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            label_prev, amb_with = created_before.get(cid, (DECISION_MATCHED, None))
            prev = (cid, label_prev, amb_with)
        dec = decide(known_best, best, thresholds, prev)

        customer_id = person_key = None
        role = dec.role
        if dec.decision.startswith("known:"):
            person_key = dec.key
            if role != ROLE_STAFF:
                customer_id = known_customer_id(shop_id, person_key)
                known_seen.setdefault(customer_id, []).extend(idx.tolist())
                customer_meta[customer_id] = {"role": role, "person_key": person_key}
        else:
            customer_id = dec.key or new_customer_id(shop_id, salt, first_track)
            by_customer.setdefault(customer_id, []).extend(idx.tolist())
            if dec.key is None or customer_id in created_before:
                info = prev_info.get(customer_id, {})
                customer_meta.setdefault(customer_id, {
                    "role": ROLE_CUSTOMER,
                    "created": True,
                    "created_day": day,
                    "created_from_track": info.get("created_from_track") or first_track,
                    "ambiguous_with": dec.ambiguous_with if dec.key is None else info.get("ambiguous_with"),
                })
            else:
                info = all_info.get(customer_id, {})
                customer_meta.setdefault(customer_id, {
                    "role": ROLE_CUSTOMER,
                    "created": False,
                    "created_day": info.get("created_day"),
                    "created_from_track": info.get("created_from_track"),
                    "ambiguous_with": info.get("ambiguous_with"),
                })
        for i in idx:
            track_distance = None
            if best is not None:
                track_distance = float(d_reg[i, registry_pos[best[0]]])
            track_rows.append({
                "track_id": track_ids[i],
                "person_id": person,
                "n_person_tracks": len(idx),
                "best_match": best[0] if best else None,
                "best_distance": best[1] if best else None,
                "track_distance": track_distance,
                "second_match": second[0] if second else None,
                "second_distance": second[1] if second else None,
                "known_match": known_best[0] if known_best else None,
                "known_distance": known_best[2] if known_best else None,
                "decision": dec.decision,
                "ambiguous": dec.ambiguous,
                "reused": dec.reused,
                "customer_id": customer_id,
                "person_key": person_key,
                "role": role,
                "distance": dec.distance,
                "confidence": dec.confidence,
            })
    for track in low.iter_rows(named=True):
        track_rows.append({
            "track_id": track["track_id"], "person_id": None, "n_person_tracks": None,
            "decision": DECISION_UNIDENTIFIED, "ambiguous": False, "reused": False,
            "role": ROLE_UNIDENTIFIED, "confidence": 0.0,
        })

    decided = pl.DataFrame(
        track_rows,
        schema={
            "track_id": pl.Utf8, "person_id": pl.Utf8, "n_person_tracks": pl.Int32, "best_match": pl.Utf8,
            "best_distance": pl.Float64, "track_distance": pl.Float64, "second_match": pl.Utf8,
            "second_distance": pl.Float64, "known_match": pl.Utf8, "known_distance": pl.Float64,
            "decision": pl.Utf8, "ambiguous": pl.Boolean, "reused": pl.Boolean, "customer_id": pl.Utf8,
            "person_key": pl.Utf8, "role": pl.Utf8, "distance": pl.Float64, "confidence": pl.Float64,
        },
    )
    all_reps = pl.concat([reps.drop("_label"), low]) if low.height else reps.drop("_label")
    joined = all_reps.join(decided, on="track_id", how="inner").sort("start_utc", "track_id")
    identities = joined.select(list(FACE_IDENTITIES_SCHEMA)).cast(dict(FACE_IDENTITIES_SCHEMA))
    recognition = joined.select(list(RECOGNITION_RESULTS_SCHEMA)).cast(dict(RECOGNITION_RESULTS_SCHEMA))

    # ledger contribution: a few diverse good faces per customer, a sighting row per VIP/blocked
    inliers = flagged.filter(pl.col("inlier"))
    for cid in sorted(by_customer):
        tracks_of = [track_ids[i] for i in sorted(set(by_customer[cid]))]
        rows = inliers.filter(pl.col("track_id").is_in(tracks_of)).sort("embedding_id")
        if rows.is_empty():
            continue
        pick = select_exemplars(matrix(rows["embedding"]), rows["quality"].to_numpy(), EXEMPLARS_PER_DAY,
                                tiebreak=rows["embedding_id"].to_list())
        chosen = rows[pick]
        meta = customer_meta[cid]
        creating = meta["created_from_track"]
        ledger_parts.append(
            chosen.select(
                pl.lit(cid).alias("customer_id"),
                pl.lit(ROLE_CUSTOMER).alias("role"),
                pl.lit(None, pl.Utf8).alias("person_key"),
                pl.lit(bool(meta.get("created"))).alias("created"),
                pl.lit(meta.get("created_day"), pl.Date).alias("created_day"),
                pl.lit(creating, pl.Utf8).alias("created_from_track"),
                pl.lit(meta.get("ambiguous_with"), pl.Utf8).alias("ambiguous_with"),
                "track_id", "embedding_id", "camera", "ts_utc", "quality", "embedding",
            )
        )
    for cid in sorted(known_seen):
        idx = sorted(set(known_seen[cid]))
        first = reps[idx[0]]
        meta = customer_meta[cid]
        ledger_parts.append(
            pl.DataFrame(
                {
                    "customer_id": [cid], "role": [meta["role"]], "person_key": [meta["person_key"]],
                    "created": [False], "created_day": [None], "created_from_track": [None], "ambiguous_with": [None],
                    "track_id": first["track_id"], "embedding_id": [None], "camera": first["camera"],
                    "ts_utc": first["start_utc"], "quality": [float(reps[idx]["best_quality"].max())],
                    "embedding": [None],
                },
                schema=LEDGER_SCHEMA,
            )
        )
    ledger_rows = (
        pl.concat([p.cast(dict(LEDGER_SCHEMA)) for p in ledger_parts]).sort("customer_id", "ts_utc", "embedding_id")
        if ledger_parts
        else pl.DataFrame(schema=LEDGER_SCHEMA)
    )
    return DayIdentities(identities, recognition, ledger_rows.select(list(LEDGER_SCHEMA)))


# --------------------------------------------------------------------------------------------
# snapshots


def registry_snapshot(ledger: pl.DataFrame, day: date, k: int = MAX_EXEMPLARS) -> pl.DataFrame:
    """CUSTOMER_REGISTRY_SCHEMA from ledger rows (with a `date` column) of days <= `day`."""
    rows = ledger.filter(pl.col("date") <= day) if not ledger.is_empty() else ledger
    if rows.is_empty():
        return pl.DataFrame(schema=CUSTOMER_REGISTRY_SCHEMA)
    rows = rows.sort("customer_id", "embedding_id", "date", nulls_last=True)
    base = rows.group_by("customer_id").agg(
        pl.col("role").first(),
        pl.col("person_key").drop_nulls().first(),
        pl.col("date").min().alias("first_seen"),
        pl.col("date").max().alias("last_seen"),
        pl.col("date").n_unique().cast(pl.Int32).alias("n_days_seen"),
        pl.col("created_day").drop_nulls().min(),
        pl.col("created_from_track").drop_nulls().sort().first(),
        pl.col("ambiguous_with").drop_nulls().sort().first(),
    )
    with_vec = rows.filter(pl.col("embedding").is_not_null())
    ex_ids: dict[str, list] = {}
    ex_days: dict[str, list] = {}
    ex_vecs: dict[str, np.ndarray] = {}
    for (cid,), group in with_vec.group_by("customer_id", maintain_order=True):
        vectors = matrix(group["embedding"])
        pick = select_exemplars(vectors, group["quality"].to_numpy(), k, tiebreak=group["embedding_id"].to_list())
        ex_ids[cid] = [group["embedding_id"][i] for i in pick]
        ex_days[cid] = [group["date"][i] for i in pick]
        ex_vecs[cid] = vectors[pick]
    cids = base["customer_id"].to_list()
    exemplars = pl.Series(
        "exemplars",
        [ex_vecs[c] if c in ex_vecs else np.zeros((0, EMBEDDING_DIM), np.float32) for c in cids],
        dtype=pl.List(EMBEDDING),
    )
    out = base.with_columns(
        pl.Series("exemplar_ids", [ex_ids.get(c, []) for c in cids], dtype=pl.List(pl.Utf8)),
        pl.Series("exemplar_days", [ex_days.get(c, []) for c in cids], dtype=pl.List(pl.Date)),
        exemplars,
    ).with_columns(pl.col("exemplar_ids").list.len().cast(pl.Int32).alias("n_exemplars"))
    return out.select(list(CUSTOMER_REGISTRY_SCHEMA)).cast(dict(CUSTOMER_REGISTRY_SCHEMA)).sort("first_seen", "customer_id")


# --------------------------------------------------------------------------------------------
# lake storage: dated partitions, camera partitions, the per-shop lock


def dated_partitions(lake_root: Path, dataset: str, shop_id: str) -> list[tuple[date, Path]]:
    """(date, part.parquet) of every `date=` partition of the shop, oldest first."""
    root = lake.partition_dir(lake_root, dataset, shop_id=shop_id)
    out = []
    if root.is_dir():
        for child in root.iterdir():
            if not child.name.startswith("date="):
                continue
            try:
                day = date.fromisoformat(child.name.removeprefix("date="))
            except ValueError:
                continue
            part = child / lake.PART_FILE
            if part.exists():
                out.append((day, part))
    return sorted(out)


def read_dated(
    lake_root: Path,
    dataset: str,
    shop_id: str,
    schema: pl.Schema,
    *,
    upto: date | None = None,
    exclude: date | None = None,
) -> pl.DataFrame:
    """All of the shop's partitions of a per-day dataset with a `date` column added."""
    frames = []
    for day, path in dated_partitions(lake_root, dataset, shop_id):
        if (upto is not None and day > upto) or day == exclude:
            continue
        frame = pl.read_parquet(path)
        frames.append(frame.select([c for c in schema if c in frame.columns]).with_columns(pl.lit(day).alias("date")))
    full = {**dict(schema), "date": pl.Date}
    if not frames:
        return pl.DataFrame(schema=full)
    out = pl.concat(frames, how="diagonal_relaxed")
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in full.items() if name not in out.columns]
    return out.with_columns(missing).select(list(full)).cast(full)


def read_camera_day(lake_root: Path, dataset: str, shop_id: str, day: date, schema: pl.Schema) -> pl.DataFrame:
    """Rows of a per-camera dataset for a shop-day, all `camera=` partitions found."""
    root = lake.partition_dir(lake_root, dataset, shop_id=shop_id, date=day.isoformat())
    frames = []
    if root.is_dir():
        for child in sorted(root.iterdir()):
            part = child / lake.PART_FILE
            if child.name.startswith("camera=") and part.exists():
                frames.append(pl.read_parquet(part))
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="diagonal_relaxed").select(list(schema)).cast(dict(schema))


_LOCAL = threading.local()


@contextmanager
def file_lock(path: Path, timeout_s: float = 1800.0) -> Iterator[Path]:
    """Exclusive flock on `path` (local disk), re-entrant within a thread."""
    path = Path(path)
    held: dict[str, int] = getattr(_LOCAL, "held", None) or {}
    _LOCAL.held = held
    key = str(path)
    if held.get(key):
        held[key] += 1
        try:
            yield path
        finally:
            held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not lock {path} within {timeout_s:.0f} s") from None
                time.sleep(0.05)
        held[key] = 1
        try:
            yield path
        finally:
            held[key] = 0
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def shop_lock(warehouse_dir: Path, shop_id: str, timeout_s: float = 1800.0):
    """Exclusive lock on a shop's identity data: ``<warehouse>/locks/identity-<shop>.lock``.

    Every writer of the ledger, registry snapshots, identities, visits, links (and erasure and
    retention) holds it, so two days of one shop never interleave their read-match-write steps.
    The warehouse folder is local disk, where flock is reliable (the lake may be a NAS).
    """
    return file_lock(Path(warehouse_dir) / "locks" / f"identity-{shop_id}.lock", timeout_s)


def read_ledger(lake_root: Path, shop_id: str, *, exclude: date | None = None, upto: date | None = None) -> pl.DataFrame:
    return read_dated(lake_root, LEDGER_DATASET, shop_id, LEDGER_SCHEMA, exclude=exclude, upto=upto)


def write_dataset_day(df: pl.DataFrame, lake_root: Path, dataset: str, shop_id: str, day: date) -> Path:
    return lake.write_partition(df, lake_root, dataset, shop_id=shop_id, date=day.isoformat())


def utc_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
