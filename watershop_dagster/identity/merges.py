"""Customer merges: when later evidence shows two customer ids are one person, the older id survives.

A returning customer who looks different (light, angle, glasses) can land in the ambiguous band
and get a new id (`matching.decide` keeps such cases ambiguous rather than merging silently).
Later days add exemplars to both ids; when the two sets of faces then clearly describe one
person, the day's build records a merge (dataset ``customer_merges``, partition = the day that
decided it). Nothing is rewritten in the lake: readers map ids through the merges
(`survivor_map`) — the registry, the next days' matching, the dbt staging models and so the
marts, and erasure, which erases the whole group.

`find_merges`, for each customer B seen on the day and every other customer A:

* never when A and B were both seen on one day (the day's clustering kept them apart: two people);
* linkage L(A, B) = the larger of the two directed medians "each exemplar of X to its nearest
  exemplar of Y": both sets of faces must be near the other, not just one lucky pair;
* merged when L is under the top of the ambiguous band (``face_match_distance +
  face_ambiguous_margin``) and the link is one-sided as in `matching.one_sided`: A and B are each
  other's nearest (by L, among customers not seen on a day with them) and every other customer is
  at least ``thresholds.face_separation`` farther from either — the rule `matching.decide` takes a
  day-person's in-band match by, applied to two customers' whole sets of faces;
* the survivor is the older id (created first; then first seen; then the smaller id).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.config import Thresholds
from watershop_dagster.identity.clustering import distances
from watershop_dagster.identity.matching import CandidateIndex, one_sided
from watershop_dagster.vocabulary import Role

CUSTOMER_MERGES_SCHEMA = catalog.CUSTOMER_MERGES.schema


def survivor_map(merges: pl.DataFrame) -> dict[str, str]:
    """merged customer_id -> the id that survives, chains followed to their end (A <- B <- C)."""
    if merges.is_empty():
        return {}
    parent = dict(zip(merges["customer_id"].to_list(), merges["surviving_id"].to_list()))
    out = {}
    for merged in parent:
        root, seen = parent[merged], {merged}
        while root in parent and root not in seen:
            seen.add(root)
            root = parent[root]
        out[merged] = root
    return out


def apply_survivors(frame: pl.DataFrame, survivors: dict[str, str], column: str = "customer_id") -> pl.DataFrame:
    """`frame` with `column` mapped to surviving ids (others unchanged)."""
    if not survivors or frame.is_empty() or column not in frame.columns:
        return frame
    return frame.with_columns(pl.col(column).replace(survivors))


def ledger_as_survivors(ledger: pl.DataFrame, survivors: dict[str, str]) -> pl.DataFrame:
    """Ledger rows with every customer id (and `ambiguous_with`) read as its surviving id; a
    customer is not ambiguous with itself."""
    if not survivors or ledger.is_empty():
        return ledger
    mapped = apply_survivors(apply_survivors(ledger, survivors), survivors, "ambiguous_with")
    return mapped.with_columns(
        pl.when(pl.col("ambiguous_with") == pl.col("customer_id")).then(None).otherwise(pl.col("ambiguous_with"))
        .alias("ambiguous_with"))


def merge_group(merges: pl.DataFrame, customer_id: str) -> set[str]:
    """Every id that is the same person as `customer_id` through merges (itself included)."""
    survivors = survivor_map(merges)
    root = survivors.get(customer_id, customer_id)
    return {customer_id, root} | {m for m, s in survivors.items() if s == root}


def marts_rebuild_from(lake_root: Path, shop_id: str | None, first: date, last: date) -> date | None:
    """The earliest day whose marts name an id merged by the builds of days first..last (of one
    shop, or of every shop when `shop_id` is None), or None when those builds merged nobody: a
    run that records a merge must rebuild the merged id's days, whose marts still name it."""
    folder = lake.partition_dir(lake_root, catalog.CUSTOMER_MERGES.name)
    shops = [shop_id] if shop_id is not None else [p.name.removeprefix("shop_id=") for p in folder.glob("shop_id=*")]
    days = [row_day for shop in shops
            for day, _folder in lake.dated_partitions(lake_root, catalog.CUSTOMER_MERGES, shop) if first <= day <= last
            for row_day in lake.read_dataset(lake_root, catalog.CUSTOMER_MERGES, shop_id=shop, date=day)["first_seen"]]
    return min(days) if days else None


def _directed_median(d: np.ndarray) -> float:
    """Median over rows of each row's nearest column."""
    return float(np.median(d.min(axis=1)))


def linkage(a: np.ndarray, b: np.ndarray) -> float:
    """L(A, B): the larger of the two directed medians of nearest-exemplar distances."""
    d = distances(a, b)
    return max(_directed_median(d), _directed_median(d.T))


def find_merges(ledger: pl.DataFrame, day: date, thresholds: Thresholds) -> pl.DataFrame:
    """The merges the evidence of days <= `day` decides, among pairs with a customer seen on `day`.

    ledger: the shop's ledger rows (with a `date` column) of days <= day, ids already mapped
    through earlier merges (`ledger_as_survivors`). Returns CUSTOMER_MERGES_SCHEMA rows."""
    rows = ledger.filter((pl.col("role") == Role.CUSTOMER) & pl.col("embedding").is_not_null()
                         & (pl.col("date") <= day)) if not ledger.is_empty() else ledger
    if rows.is_empty():
        return pl.DataFrame(schema=CUSTOMER_MERGES_SCHEMA)
    index = CandidateIndex.from_ledger(rows.drop("date"))
    keys = index.keys
    days_seen = {cid: set(d) for cid, d in rows.group_by("customer_id").agg(pl.col("date").unique())
                 .iter_rows()}
    today = [i for i, cid in enumerate(keys) if day in days_seen[cid]]
    if not today or len(keys) < 2:
        return pl.DataFrame(schema=CUSTOMER_MERGES_SCHEMA)
    linkages = _Linkages(index, [days_seen[cid] for cid in keys])
    row = linkages.row
    info = index.info
    candidates = []
    for b in today:
        lb = row(b)
        a = int(np.argmin(lb))
        if not np.isfinite(lb[a]) or lb[a] >= thresholds.face_match_distance + thresholds.face_ambiguous_margin:
            continue
        la = row(a)
        if int(np.argmin(la)) != b:  # not each other's nearest
            continue
        rivals = np.concatenate([np.delete(lb, [a, b]), np.delete(la, [a, b])])
        rival = float(rivals.min()) if rivals.size else np.inf
        if one_sided(float(lb[a]), rival, True, thresholds.face_separation, thresholds.face_match_distance):
            candidates.append((float(lb[a]), rival, a, b))
    merged: set[int] = set()
    out = []
    for link, rival, a, b in sorted(candidates):
        if a in merged or b in merged:
            continue
        merged |= {a, b}
        older, newer = sorted((keys[a], keys[b]), key=lambda cid: _age_key(cid, info.get(cid, {}), days_seen[cid]))
        out.append({
            "customer_id": newer,
            "surviving_id": older,
            "first_seen": min(days_seen[newer]),
            "linkage": round(link, 4),
            "runner_up": round(rival, 4) if np.isfinite(rival) else None,
            "n_exemplars": int(index.offsets[keys.index(newer) + 1] - index.offsets[keys.index(newer)]),
            "n_exemplars_surviving": int(index.offsets[keys.index(older) + 1] - index.offsets[keys.index(older)]),
        })
    return pl.DataFrame(out, schema=CUSTOMER_MERGES_SCHEMA)


class _Linkages:
    """L(i, every customer) rows, computed on demand: one distance block per row instead of one
    call per pair (a shop with thousands of customers re-checks the day's few against all)."""

    def __init__(self, index: CandidateIndex, days: list[set[date]]):
        self.index = index
        sizes = np.diff(index.offsets)
        # each customer's exemplar columns, padded with -1 to the longest: segment medians in one call
        self.columns = np.full((len(sizes), int(sizes.max())), -1)
        for i, (start, size) in enumerate(zip(index.offsets[:-1], sizes)):
            self.columns[i, :size] = np.arange(start, start + size)
        day_list = sorted(set().union(*days))
        self.seen = np.zeros((len(days), len(day_list)), bool)
        for i, seen in enumerate(days):
            self.seen[i, [day_list.index(d) for d in seen]] = True
        self.rows: dict[int, np.ndarray] = {}

    def row(self, i: int) -> np.ndarray:
        """L(i, every customer) as `linkage` defines it; inf where the two were seen on one day (or i itself)."""
        if i not in self.rows:
            index = self.index
            d = distances(index.vectors[index.offsets[i]:index.offsets[i + 1]], index.vectors)
            mine_to_theirs = np.median(np.minimum.reduceat(d, index.offsets[:-1], axis=1), axis=0)
            nearest_of_theirs = np.where(self.columns >= 0, d.min(axis=0)[self.columns], np.nan)
            theirs_to_mine = np.nanmedian(nearest_of_theirs, axis=1)
            out = np.maximum(mine_to_theirs, theirs_to_mine)
            out[(self.seen & self.seen[i]).any(axis=1)] = np.inf  # itself included
            self.rows[i] = out
        return self.rows[i]


def _age_key(customer_id: str, info: dict, days: set[date]) -> tuple:
    created = info.get("created_day") or min(days)
    return created, min(days), customer_id
