"""Stable anonymous customer ids: group a day's faces into people and match them to the registry.

A day, step by step (`assign_identities`, pure: DataFrames in, DataFrames out):

1. **Evidence** (`_gather_evidence`): every track's distances (one representative vector per
   track) to the known people (photos), to the registry (exemplars of every customer in the
   ledger, from every day except the day being built) and to the earlier build of this day.
2. **Tracks to day-persons** (`identity.clustering`): clusters of tracks; two tracks that each
   clearly and one-sidedly match a different known person or customer are never clustered; tracks
   whose best face is too poor stay *unidentified*.
3. **Decision** per day-person (`identity.matching.decide`): known person, the customer an
   earlier build of this day gave it (re-runs and backfills never renumber), matched, ambiguous
   (a new customer, not merged, with ``ambiguous_with``) or new. A match in the ambiguous band
   is taken (flagged ambiguous) when it is one-sided: the day-person and the customer are each
   other's nearest (`mutual_nearest` over all the day's people and customers) and every other
   identity is `thresholds.face_separation` farther — except customers another of the day's
   people is mutually nearest to (`unclaimed_runner_up`): they are here as someone else.
4. **Ids** (`identity.ids`): a new customer's id is ``c_`` + hash(shop, id salt, its first track
   id); the salt changes with every erasure of the shop (see `privacy.id_salt`), so an erased
   person can never get their old id back, even when the footage is processed again. Known
   VIP/blocked people get ``k_`` + hash(shop, person_key); staff get no customer id.
5. **Ledger rows** for the day (`identity.ledger`): per customer seen, up to EXEMPLARS_PER_DAY
   diverse, good-quality embeddings (VIP/blocked: one sighting row without embedding); per known
   person clearly seen, a few faces they learn from (`identity.sightings`).

The registry snapshot of day D (`registry_snapshot`) is a pure function of the ledger rows of
days <= D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from watershop_dagster import catalog
from watershop_dagster.catalog import EMBEDDING
from watershop_dagster.config import Thresholds
from watershop_dagster.identity.clustering import cluster_tracks, identity_conflicts, matrix, track_representatives
from watershop_dagster.identity.ids import known_customer_id, new_customer_id, person_id_for
from watershop_dagster.identity.ledger import ledger_info
from watershop_dagster.identity.matching import MAX_EXEMPLARS, CandidateIndex, Decision, decide, select_exemplars
from watershop_dagster.identity.sightings import SIGHTINGS_SCHEMA, confirmed, sighting_rows, with_learned
from watershop_dagster.vision.faces import EMBEDDING_DIM
from watershop_dagster.vocabulary import Role, Verdict

LEDGER_SCHEMA = catalog.CUSTOMER_LEDGER.schema
CUSTOMER_REGISTRY_SCHEMA = catalog.CUSTOMER_REGISTRY.schema
FACE_IDENTITIES_SCHEMA = catalog.FACE_IDENTITIES.schema
RECOGNITION_RESULTS_SCHEMA = catalog.RECOGNITION_RESULTS.schema

#: a day adds at most this many exemplar rows per customer to the ledger
EXEMPLARS_PER_DAY = 3

#: what the per-track decision rows hold before they are joined to the track facts
_DECIDED_SCHEMA = pl.Schema({
    "track_id": pl.Utf8, "person_id": pl.Utf8, "n_person_tracks": pl.Int32, "best_match": pl.Utf8,
    "best_distance": pl.Float64, "track_distance": pl.Float64, "second_match": pl.Utf8,
    "second_distance": pl.Float64, "known_match": pl.Utf8, "known_distance": pl.Float64,
    "decision": pl.Utf8, "ambiguous": pl.Boolean, "reused": pl.Boolean, "customer_id": pl.Utf8,
    "person_key": pl.Utf8, "role": pl.Utf8, "distance": pl.Float64, "confidence": pl.Float64,
})


@dataclass
class DayIdentities:
    identities: pl.DataFrame  # FACE_IDENTITIES_SCHEMA
    recognition: pl.DataFrame  # RECOGNITION_RESULTS_SCHEMA
    ledger_rows: pl.DataFrame  # LEDGER_SCHEMA: the day's contribution
    sightings: pl.DataFrame  # SIGHTINGS_SCHEMA: faces the day's clear known-person matches add

    def count(self, column: str, value: str) -> int:
        return self.recognition.filter(pl.col(column) == value).height


@dataclass
class _Evidence:
    """What the day's tracks are matched against, and each track's distances to it."""

    known: CandidateIndex  # known people's photos
    registry: CandidateIndex  # customers of every other day
    earlier_build: CandidateIndex  # this day's earlier build's own exemplars
    d_known: np.ndarray  # (tracks, known people)
    d_registry: np.ndarray  # (tracks, customers)
    d_earlier: np.ndarray  # (tracks, earlier build's customers)
    existing: set[str]  # customers of other days
    earlier_info: dict[str, dict]  # ledger_info of the earlier build
    all_info: dict[str, dict]  # ledger_info of other days, then of the earlier build
    created_before: dict[str, tuple[str, str | None]]  # customers the earlier build created: (label, ambiguous_with)

    def still_exists(self, customer_id: str) -> bool:
        return customer_id in self.existing or customer_id in self.created_before


@dataclass
class _DayPerson:
    rows: np.ndarray  # indices into the day's track representatives
    weights: np.ndarray  # the tracks' weights, summing to 1
    first_track: str
    person_id: str

    def distance(self, per_track: np.ndarray) -> np.ndarray:
        """The day-person's distance to each candidate: weighted mean over its tracks."""
        return (per_track[self.rows] * self.weights[:, None]).sum(0)


@dataclass
class _Nearest:
    known: tuple[str, str, float] | None = None  # (person_key, role, distance)
    best: tuple[str, float] | None = None  # (customer_id, distance)
    second: tuple[str, float] | None = None


@dataclass
class _Contributions:
    """Who the day's tracks turned out to be, for the ledger rows."""

    by_customer: dict[str, list[int]] = field(default_factory=dict)  # customer -> track rows with embeddings kept
    known_seen: dict[str, list[int]] = field(default_factory=dict)  # VIP/blocked customer -> track rows
    meta: dict[str, dict] = field(default_factory=dict)  # customer -> ledger facts


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
    sightings: pl.DataFrame | None = None,
) -> DayIdentities:
    """Everything `build_customer_registry` decides for one shop-day, without I/O.

    embeddings/tracks: the day's face_embeddings/face_tracks (all cameras); known: known people
    (KNOWN_PEOPLE_SCHEMA); ledger_other: ledger rows of every OTHER day of the shop; previous:
    track -> customer of an earlier build of this day (see ledger.previous_assignments) and
    previous_ledger that build's ledger rows (to keep labels and creation facts).
    Tracks whose best face quality is below `min_track_quality` are 'unidentified'. sightings:
    known_person_sightings of OTHER days; known people are matched with their learned faces too
    (`identity.sightings`).
    """
    thr = thresholds.face_match_distance
    previous = previous or {}
    previous_ledger = previous_ledger if previous_ledger is not None else pl.DataFrame(schema=LEDGER_SCHEMA)
    reps, flagged = track_representatives(embeddings, tracks, outlier_distance=thr)
    low = reps.filter(pl.col("best_quality") < min_track_quality)
    reps = reps.filter(pl.col("best_quality") >= min_track_quality)
    rep_vectors = matrix(reps["embedding"]) if reps.height else np.zeros((0, EMBEDDING_DIM), np.float32)
    weights = reps["weight"].to_numpy() if reps.height else np.zeros(0)
    evidence = _gather_evidence(rep_vectors, with_learned(known, sightings if sightings is not None else
                                                          pl.DataFrame(schema=SIGHTINGS_SCHEMA)),
                                ledger_other, previous_ledger, day)
    inliers = flagged.filter(pl.col("inlier"))
    conflicts = identity_conflicts(np.hstack([evidence.d_known, evidence.d_registry]),
                                   thr - thresholds.face_ambiguous_margin, thresholds.face_separation)
    labels = cluster_tracks(reps, thr, conflicts)
    reps = reps.with_columns(pl.Series("_label", labels, pl.Int64))

    track_ids = reps["track_id"].to_list()
    contributions = _Contributions()
    learned: list[pl.DataFrame] = []
    track_rows: list[dict] = []
    people = [
        _DayPerson(rows, weights[rows] / weights[rows].sum(), track_ids[rows[0]],
                   person_id_for(shop_id, day, track_ids[rows[0]]))
        for rows in (np.flatnonzero(labels == label) for label in range(int(labels.max()) + 1 if len(labels) else 0))
    ]
    d_people = np.array([p.distance(evidence.d_registry) for p in people]).reshape(len(people), len(evidence.registry))
    mutual = mutual_nearest(d_people)
    for person, is_mutual, rival in zip(people, mutual, unclaimed_runner_up(d_people, mutual)):
        nearest = _nearest(evidence, person)
        earlier = _earlier_identity(evidence, person, track_ids, previous, thr - thresholds.face_ambiguous_margin)
        decision = decide(nearest.known, nearest.best, thresholds, earlier, rival=float(rival), mutual=bool(is_mutual))
        customer_id, person_key = _claim(contributions, evidence, person, decision, shop_id, day, salt)
        if decision.decision.startswith(Verdict.KNOWN_PREFIX) and not decision.ambiguous and confirmed(
                decision.distance, nearest.best[1] if nearest.best else math.inf, thr,
                thresholds.face_ambiguous_margin, thresholds.face_separation):
            tracks_of = [track_ids[i] for i in person.rows]
            learned.append(sighting_rows(decision.key, decision.role,
                                         inliers.filter(pl.col("track_id").is_in(tracks_of)), decision.distance))
        track_rows += _decision_rows(evidence, person, nearest, decision, customer_id, person_key, track_ids)
    track_rows += [_unidentified_row(track_id) for track_id in low["track_id"].to_list()]

    identities, recognition = _day_tables(reps.drop("_label"), low, track_rows)
    ledger_rows = _ledger_rows(contributions, flagged, reps, track_ids)
    day_sightings = pl.concat(learned) if learned else pl.DataFrame(schema=SIGHTINGS_SCHEMA)
    return DayIdentities(identities, recognition, ledger_rows, day_sightings.sort("person_key", "embedding_id"))


def mutual_nearest(d: np.ndarray) -> np.ndarray:
    """(day-persons,) bool: the row's nearest column has this row as its nearest row (first on ties).
    Rows are the day's people, columns the registry's customers."""
    if d.size == 0:
        return np.zeros(d.shape[0], bool)
    best_col = np.argmin(d, axis=1)
    best_row = np.argmin(d, axis=0)
    return best_row[best_col] == np.arange(d.shape[0])


def unclaimed_runner_up(d: np.ndarray, mutual: np.ndarray) -> np.ndarray:
    """(day-persons,) each row's distance to its nearest customer after its own nearest, leaving out
    customers that ANOTHER row is mutually nearest to (`mutual`, from `mutual_nearest`): that
    customer is already here today as someone else, so being near it does not make this row's
    match less one-sided. inf when no customer is left. Rows are the day's people, columns the
    registry's customers."""
    n, m = d.shape
    out = np.full(n, np.inf)
    if m == 0:
        return out
    best_col = np.argmin(d, axis=1)
    claimed_by = np.full(m, -1)
    claimed_by[best_col[mutual]] = np.flatnonzero(mutual)
    for i in range(n):
        open_cols = (claimed_by == -1) | (claimed_by == i)
        open_cols[best_col[i]] = False
        if open_cols.any():
            out[i] = d[i, open_cols].min()
    return out


def _gather_evidence(
    rep_vectors: np.ndarray, known: pl.DataFrame, ledger_other: pl.DataFrame, previous_ledger: pl.DataFrame, day: date
) -> _Evidence:
    known_index = CandidateIndex.from_known(known)
    registry = CandidateIndex.from_ledger(ledger_other)
    # the earlier build's own exemplars: people keep their ids even when the tracks were re-made
    earlier_build = CandidateIndex.from_ledger(previous_ledger)
    existing = set(ledger_other["customer_id"].unique().to_list()) if not ledger_other.is_empty() else set()
    earlier_info = ledger_info(previous_ledger)
    return _Evidence(
        known=known_index,
        registry=registry,
        earlier_build=earlier_build,
        d_known=known_index.group_min(rep_vectors),
        d_registry=registry.group_min(rep_vectors),
        d_earlier=earlier_build.group_min(rep_vectors),
        existing=existing,
        earlier_info=earlier_info,
        all_info=ledger_info(ledger_other) | {k: v for k, v in earlier_info.items() if k not in existing},
        created_before={
            cid: (Verdict.AMBIGUOUS if info.get("ambiguous_with") else Verdict.NEW, info.get("ambiguous_with"))
            for cid, info in earlier_info.items()
            if info.get("created_day") == day
        },
    )


def _nearest(evidence: _Evidence, person: _DayPerson) -> _Nearest:
    """The day-person's nearest known person and two nearest registry customers."""
    nearest = _Nearest()
    if len(evidence.known):
        dk = person.distance(evidence.d_known)
        j = int(np.argmin(dk))
        nearest.known = (evidence.known.keys[j], evidence.known.roles[j], float(dk[j]))
    if len(evidence.registry):
        dr = person.distance(evidence.d_registry)
        order = np.argsort(dr, kind="stable")
        nearest.best = (evidence.registry.keys[order[0]], float(dr[order[0]]))
        if len(order) > 1:
            nearest.second = (evidence.registry.keys[order[1]], float(dr[order[1]]))
    return nearest


def _earlier_identity(
    evidence: _Evidence, person: _DayPerson, track_ids: list[str], previous: dict[str, str], clear_match: float
) -> tuple[str, str, str | None] | None:
    """(customer_id, decision, ambiguous_with) an earlier build of this day gave the day-person:
    the customer most of its tracks had, or — when the tracks were re-made — a clear match to
    that build's exemplars; only customers that still exist."""
    votes: dict[str, int] = {}
    for i in person.rows:
        cid = previous.get(track_ids[i])
        if cid is not None and evidence.still_exists(cid):
            votes[cid] = votes.get(cid, 0) + 1
    if not votes and len(evidence.earlier_build):
        dp = person.distance(evidence.d_earlier)
        j = int(np.argmin(dp))
        cid = evidence.earlier_build.keys[j]
        if dp[j] < clear_match and evidence.still_exists(cid):
            votes[cid] = 1
    if not votes:
        return None
    cid = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    label, ambiguous_with = evidence.created_before.get(cid, (Verdict.MATCHED, None))
    return cid, label, ambiguous_with


def _claim(
    contributions: _Contributions, evidence: _Evidence, person: _DayPerson, decision: Decision,
    shop_id: str, day: date, salt: str,
) -> tuple[str | None, str | None]:
    """(customer_id, person_key) of the decided day-person; records its ledger facts."""
    rows = person.rows.tolist()
    if decision.decision.startswith(Verdict.KNOWN_PREFIX):
        person_key = decision.key
        if decision.role == Role.STAFF:
            return None, person_key
        customer_id = known_customer_id(shop_id, person_key)
        contributions.known_seen.setdefault(customer_id, []).extend(rows)
        contributions.meta[customer_id] = {"role": decision.role, "person_key": person_key}
        return customer_id, person_key
    customer_id = decision.key or new_customer_id(shop_id, salt, person.first_track)
    contributions.by_customer.setdefault(customer_id, []).extend(rows)
    if decision.key is None or customer_id in evidence.created_before:
        info = evidence.earlier_info.get(customer_id, {})
        facts = {
            "created": True,
            "created_day": day,
            "created_from_track": info.get("created_from_track") or person.first_track,
            "ambiguous_with": decision.ambiguous_with if decision.key is None else info.get("ambiguous_with"),
        }
    else:
        info = evidence.all_info.get(customer_id, {})
        facts = {"created": False, **{k: info.get(k) for k in ("created_day", "created_from_track", "ambiguous_with")}}
    contributions.meta.setdefault(customer_id, {"role": Role.CUSTOMER, **facts})
    return customer_id, None


def _decision_rows(
    evidence: _Evidence, person: _DayPerson, nearest: _Nearest, decision: Decision,
    customer_id: str | None, person_key: str | None, track_ids: list[str],
) -> list[dict]:
    """One _DECIDED_SCHEMA row per track of the day-person."""
    best, second, known = nearest.best, nearest.second, nearest.known
    best_column = evidence.registry.keys.index(best[0]) if best is not None else None
    return [
        {
            "track_id": track_ids[i],
            "person_id": person.person_id,
            "n_person_tracks": len(person.rows),
            "best_match": best[0] if best else None,
            "best_distance": best[1] if best else None,
            "track_distance": float(evidence.d_registry[i, best_column]) if best is not None else None,
            "second_match": second[0] if second else None,
            "second_distance": second[1] if second else None,
            "known_match": known[0] if known else None,
            "known_distance": known[2] if known else None,
            "decision": decision.decision,
            "ambiguous": decision.ambiguous,
            "reused": decision.reused,
            "customer_id": customer_id,
            "person_key": person_key,
            "role": decision.role,
            "distance": decision.distance,
            "confidence": decision.confidence,
        }
        for i in person.rows
    ]


def _unidentified_row(track_id: str) -> dict:
    return {
        "track_id": track_id, "person_id": None, "n_person_tracks": None,
        "decision": Verdict.UNIDENTIFIED, "ambiguous": False, "reused": False,
        "role": Role.UNIDENTIFIED, "confidence": 0.0,
    }


def _day_tables(reps: pl.DataFrame, low: pl.DataFrame, track_rows: list[dict]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(face_identities, recognition_results): the decisions joined to the tracks' facts."""
    decided = pl.DataFrame(track_rows, schema=_DECIDED_SCHEMA)
    all_reps = pl.concat([reps, low]) if low.height else reps
    joined = all_reps.join(decided, on="track_id", how="inner").sort("start_utc", "track_id")
    identities = joined.select(list(FACE_IDENTITIES_SCHEMA)).cast(dict(FACE_IDENTITIES_SCHEMA))
    recognition = joined.select(list(RECOGNITION_RESULTS_SCHEMA)).cast(dict(RECOGNITION_RESULTS_SCHEMA))
    return identities, recognition


def _ledger_rows(
    contributions: _Contributions, flagged: pl.DataFrame, reps: pl.DataFrame, track_ids: list[str]
) -> pl.DataFrame:
    """The day's ledger contribution: a few diverse good faces per customer, a sighting row per
    VIP/blocked person."""
    parts: list[pl.DataFrame] = []
    inliers = flagged.filter(pl.col("inlier"))
    for cid in sorted(contributions.by_customer):
        tracks_of = [track_ids[i] for i in sorted(set(contributions.by_customer[cid]))]
        rows = inliers.filter(pl.col("track_id").is_in(tracks_of)).sort("embedding_id")
        if rows.is_empty():
            continue
        pick = select_exemplars(matrix(rows["embedding"]), rows["quality"].to_numpy(), EXEMPLARS_PER_DAY,
                                tiebreak=rows["embedding_id"].to_list())
        meta = contributions.meta[cid]
        parts.append(
            rows[pick].select(
                pl.lit(cid).alias("customer_id"),
                pl.lit(Role.CUSTOMER).alias("role"),
                pl.lit(None, pl.Utf8).alias("person_key"),
                pl.lit(bool(meta.get("created"))).alias("created"),
                pl.lit(meta.get("created_day"), pl.Date).alias("created_day"),
                pl.lit(meta["created_from_track"], pl.Utf8).alias("created_from_track"),
                pl.lit(meta.get("ambiguous_with"), pl.Utf8).alias("ambiguous_with"),
                "track_id", "embedding_id", "camera", "ts_utc", "quality", "embedding",
            )
        )
    for cid in sorted(contributions.known_seen):
        idx = sorted(set(contributions.known_seen[cid]))
        first = reps[idx[0]]
        meta = contributions.meta[cid]
        parts.append(
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
    if not parts:
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    ledger = pl.concat([p.cast(dict(LEDGER_SCHEMA)) for p in parts]).sort("customer_id", "ts_utc", "embedding_id")
    return ledger.select(list(LEDGER_SCHEMA))


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
