"""Matching a day-person to known people and registry customers, and the decision it gets.

A day-person's distance to a candidate = quality-weighted mean over its tracks of the track's
minimum distance to the candidate's exemplars (`CandidateIndex.group_min`). `decide`, with
thr = face_match_distance and m = face_ambiguous_margin:

* best known person closer than thr → ``known:<role>`` (staff never become customers);
* this day was built before and the day-person's tracks belonged to a customer that still
  exists → that customer again (re-runs and backfills never renumber; `reused` is set);
* best customer closer than thr - m → ``matched``;
* best customer in [thr - m, thr + m) → ``ambiguous``: NOT merged — a new customer is created
  with ``ambiguous_with`` = the candidate, for review — unless the evidence is *one-sided*
  (`one_sided`): the day-person and the customer are each other's nearest, and every other
  identity (the runner-up customer, the nearest known person) is at least s =
  ``thresholds.face_separation`` farther; a runner-up customer that another of the day's people
  is mutually nearest to is no rival (`registry.unclaimed_runner_up`): it is here as someone else.
  Then it is ``matched`` with ``ambiguous`` set (visible, not silent): a returning customer under
  another light or angle lands in the band, while a stranger who merely resembles one customer
  rarely is that customer's nearest day-person with nobody else near;
* the same for known people: a known person in [thr, thr + m) who is s nearer than
  every customer is that known person (``ambiguous`` set), so a staff member seen from a new
  angle is not counted as a customer;
* otherwise ``new``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from watershop_dagster.config import Thresholds
from watershop_dagster.identity.clustering import distances, matrix
from watershop_dagster.identity.ledger import ledger_info
from watershop_dagster.vision.faces import EMBEDDING_DIM
from watershop_dagster.vocabulary import Role, Verdict

#: at most this many exemplars per customer are matched against and kept in a snapshot
MAX_EXEMPLARS = 10
#: exemplar candidates must reach this share of the customer's best face quality
EXEMPLAR_MIN_QUALITY_SHARE = 0.6


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
        rows = ledger.filter((pl.col("role") == Role.CUSTOMER) & pl.col("embedding").is_not_null())
        if rows.is_empty():
            return cls([], [], np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros(1, int), info)
        rows = rows.sort("customer_id", "embedding_id")
        keys, roles, offsets, blocks = [], [], [0], []
        for (key,), group in rows.group_by("customer_id", maintain_order=True):
            vectors = matrix(group["embedding"])
            pick = select_exemplars(vectors, group["quality"].to_numpy(), k, tiebreak=group["embedding_id"].to_list())
            keys.append(key)
            roles.append(Role.CUSTOMER)
            blocks.append(vectors[pick])
            offsets.append(offsets[-1] + len(pick))
        return cls(keys, roles, np.concatenate(blocks), np.asarray(offsets), info)


# --------------------------------------------------------------------------------------------
# decisions


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


def one_sided(best: float, rival: float, mutual: bool, separation: float, threshold: float) -> bool:
    """True when a near-threshold candidate is the only explanation: the two are each other's
    nearest (`mutual`) and the runner-up identity is at least `separation` farther. A rival
    beyond twice the threshold (or none) counts as twice the threshold, so a separation of 1 or
    more keeps every band case ambiguous."""
    return bool(mutual) and min(rival, 2.0 * threshold) - best >= separation


def decide(
    known: tuple[str, str, float] | None,
    best: tuple[str, float] | None,
    thresholds: Thresholds,
    previous: tuple[str, str, str | None] | None = None,
    *,
    rival: float = math.inf,
    mutual: bool = False,
) -> Decision:
    """The identity of one day-person.

    known: (person_key, role, distance) of the nearest known person; best: (customer_id,
    distance) of the nearest registry customer; previous: (customer_id, decision, ambiguous_with)
    from an earlier build of the same day, when that customer still exists. rival: distance of
    the runner-up registry customer; mutual: the best customer's nearest day-person of the day is
    this one (both only matter in the ambiguous band, see the module docstring).
    """
    thr, margin, separation = thresholds.face_match_distance, thresholds.face_ambiguous_margin, thresholds.face_separation
    best_d = best[1] if best is not None else math.inf
    if known is not None and (known[2] < thr or (known[2] < thr + margin
                                                  and one_sided(known[2], best_d, True, separation, thr))):
        key, role, d = known
        return Decision(Verdict.known(role), key, role, d, match_confidence(d, thr), d >= thr - margin)
    if previous is not None:
        cid, label, amb_with = previous
        if best is not None and best[0] == cid:
            d = best_d
        else:
            d = None
        if label == Verdict.MATCHED:
            conf = match_confidence(d, thr) if d is not None else 0.5
            return Decision(Verdict.MATCHED, cid, Role.CUSTOMER, d, conf, d is not None and abs(d - thr) < margin, True)
        conf = 0.4 if label == Verdict.AMBIGUOUS else new_confidence(best_d, thr)
        return Decision(label, cid, Role.CUSTOMER, None, conf, label == Verdict.AMBIGUOUS, True, amb_with)
    if best is not None and best_d < thr - margin:
        return Decision(Verdict.MATCHED, best[0], Role.CUSTOMER, best_d, match_confidence(best_d, thr), False)
    known_d = known[2] if known is not None else math.inf
    if best is not None and best_d < thr + margin and one_sided(best_d, min(rival, known_d), mutual, separation, thr):
        return Decision(Verdict.MATCHED, best[0], Role.CUSTOMER, best_d, match_confidence(best_d, thr), True)
    if best is not None and best_d < thr + margin:
        return Decision(Verdict.AMBIGUOUS, None, Role.CUSTOMER, None, 0.4, True, ambiguous_with=best[0])
    return Decision(Verdict.NEW, None, Role.CUSTOMER, None, new_confidence(best_d, thr), False)
