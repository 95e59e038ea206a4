"""Link POS transactions to the visit of the person at the counter when they paid.

For a transaction at time t (``timestamp_utc``) the candidates are the day's visits of paying
roles (customer, vip, blocked — never staff) whose span, widened by `tolerance_s` on both sides,
contains t. The winner is, in this order: a visit whose span contains t over one that only comes
within the tolerance; then the visit whose person's face was seen closest to t (nearest face
detection: this breaks ties between overlapping visits); then the visit nearest in span; then
visit_id. Unlinked transactions get a `reason`.

``link_confidence`` = time factor × tie factor × the visit's identity confidence, where the time
factor is 1 inside the span and 0.8 × (1 - distance / tolerance) outside it, and the tie factor
is 1 with a single candidate, else 0.5 + 0.5 × min(1, (runner-up's face gap - winner's) / 10 s).

The POS's own customer id (when the export has one) is kept as ``pos_customer_id``;
`pos_customer_map` maps each to the registry customer it was linked to most often.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from watershop_dagster import catalog
from watershop_dagster.vocabulary import PAYING_ROLES

DEFAULT_TOLERANCE_S = 90.0
TIE_SCALE_S = 10.0

REASON_NO_VISITS = "no visits that day"
REASON_NO_VISIT_NEAR = "no visit within tolerance"
REASON_NO_TIME = "no timestamp"

TRANSACTION_VISIT_LINKS_SCHEMA = catalog.TRANSACTION_VISIT_LINKS.schema
POS_CUSTOMER_MAP_SCHEMA = catalog.POS_CUSTOMER_MAP.schema
VISITS_WITHOUT_TRANSACTION_SCHEMA = catalog.VISITS_WITHOUT_TRANSACTION.schema


def _seconds(values) -> np.ndarray:
    return np.asarray([v.timestamp() if v is not None else math.nan for v in values], np.float64)


def link_transactions_to_visits(
    transactions: pl.DataFrame,
    visits: pl.DataFrame,
    sightings: pl.DataFrame | None = None,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    roles: Sequence[str] = PAYING_ROLES,
) -> pl.DataFrame:
    """TRANSACTION_VISIT_LINKS_SCHEMA, one row per transaction.

    transactions: transaction_id, timestamp_utc and optionally customer_id (the POS's);
    visits: VISITS_SCHEMA; sightings: (visit_id, ts_utc) of the faces seen in each visit (None:
    the visit span's ends stand in).
    """
    if transactions.is_empty():
        return pl.DataFrame(schema=TRANSACTION_VISIT_LINKS_SCHEMA)
    pool = visits.filter(pl.col("role").is_in(list(roles))) if not visits.is_empty() else visits
    pool = pool.sort("entry_utc", "visit_id") if not pool.is_empty() else pool
    v_ids = pool["visit_id"].to_list() if not pool.is_empty() else []
    v_entry = _seconds(pool["entry_utc"].to_list()) if v_ids else np.zeros(0)
    v_exit = _seconds(pool["exit_utc"].to_list()) if v_ids else np.zeros(0)
    v_rows = pool.select("customer_id", "person_key", "role", "confidence").rows() if v_ids else []
    seen: dict[str, np.ndarray] = {}
    if sightings is not None and not sightings.is_empty() and v_ids:
        for (vid,), group in sightings.filter(pl.col("visit_id").is_in(v_ids)).group_by("visit_id"):
            seen[vid] = np.sort(_seconds(group["ts_utc"].to_list()))
    pos_ids = transactions["customer_id"].to_list() if "customer_id" in transactions.columns else [None] * transactions.height
    out = []
    for (tid, ts), pos_id in zip(transactions.select("transaction_id", "timestamp_utc").iter_rows(), pos_ids):
        row = {"transaction_id": tid, "timestamp_utc": ts, "pos_customer_id": pos_id, "link_confidence": 0.0,
               "n_candidates": 0}
        if ts is None:
            out.append(row | {"reason": REASON_NO_TIME})
            continue
        if not v_ids:
            out.append(row | {"reason": REASON_NO_VISITS})
            continue
        t = ts.timestamp()
        near = np.flatnonzero((v_entry - tolerance_s <= t) & (t <= v_exit + tolerance_s))
        if len(near) == 0:
            out.append(row | {"reason": REASON_NO_VISIT_NEAR})
            continue
        ranked = []
        for k in near:
            inside = v_entry[k] <= t <= v_exit[k]
            span_gap = 0.0 if inside else min(abs(t - v_entry[k]), abs(t - v_exit[k]))
            faces = seen.get(v_ids[k])
            if faces is not None and len(faces):
                pos = np.searchsorted(faces, t)
                gaps = [abs(faces[p] - t) for p in (pos - 1, pos) if 0 <= p < len(faces)]
                seen_gap = float(min(gaps))
            else:
                seen_gap = min(abs(t - v_entry[k]), abs(t - v_exit[k])) if inside else span_gap
            ranked.append((not inside, seen_gap, span_gap, v_ids[k], k))
        ranked.sort()
        outside, seen_gap, span_gap, vid, k = ranked[0]
        time_factor = 1.0 if not outside else 0.8 * max(0.0, 1.0 - span_gap / tolerance_s)
        tie_factor = 1.0
        if len(ranked) > 1:
            runner = ranked[1]
            if runner[0] == outside:
                tie_factor = 0.5 + 0.5 * min(1.0, max(0.0, runner[1] - seen_gap) / TIE_SCALE_S)
        customer_id, person_key, role, conf = v_rows[k]
        out.append(row | {
            "visit_id": vid, "customer_id": customer_id, "person_key": person_key, "role": role,
            "link_confidence": time_factor * tie_factor * float(conf if conf is not None else 1.0),
            "n_candidates": len(ranked), "seen_gap_s": seen_gap, "reason": None,
        })
    links = pl.from_dicts(out, schema=TRANSACTION_VISIT_LINKS_SCHEMA)
    return links.sort("timestamp_utc", "transaction_id")


def visits_without_transaction(
    visits: pl.DataFrame, links: pl.DataFrame, roles: Sequence[str] = PAYING_ROLES
) -> pl.DataFrame:
    """VISITS_WITHOUT_TRANSACTION_SCHEMA: paying-role visits no transaction was linked to."""
    if visits.is_empty():
        return pl.DataFrame(schema=VISITS_WITHOUT_TRANSACTION_SCHEMA)
    linked = links.filter(pl.col("visit_id").is_not_null()).select("visit_id").unique() if not links.is_empty() \
        else pl.DataFrame(schema={"visit_id": pl.Utf8})
    rest = visits.filter(pl.col("role").is_in(list(roles))).join(linked, on="visit_id", how="anti")
    return rest.select(list(VISITS_WITHOUT_TRANSACTION_SCHEMA)).cast(dict(VISITS_WITHOUT_TRANSACTION_SCHEMA)).sort(
        "entry_utc", "visit_id"
    )


def pos_customer_map(links: pl.DataFrame) -> pl.DataFrame:
    """POS_CUSTOMER_MAP_SCHEMA: per POS customer id, the registry customer most of its links went to
    (ties: higher mean link confidence, then customer_id). `links` needs a `date` column."""
    rows = links.filter(pl.col("pos_customer_id").is_not_null() & pl.col("customer_id").is_not_null()) \
        if not links.is_empty() else links
    if rows.is_empty():
        return pl.DataFrame(schema=POS_CUSTOMER_MAP_SCHEMA)
    pairs = rows.group_by("pos_customer_id", "customer_id").agg(
        pl.len().cast(pl.Int32).alias("n_links"),
        pl.col("link_confidence").mean().alias("mean_link_confidence"),
        pl.col("date").min().alias("first_date"),
        pl.col("date").max().alias("last_date"),
    )
    totals = pairs.group_by("pos_customer_id").agg(pl.col("n_links").sum().cast(pl.Int32).alias("n_pos_links"))
    best = (
        pairs.sort(["pos_customer_id", "n_links", "mean_link_confidence", "customer_id"],
                   descending=[False, True, True, False])
        .group_by("pos_customer_id", maintain_order=True)
        .first()
        .join(totals, on="pos_customer_id")
        .with_columns((pl.col("n_links") / pl.col("n_pos_links")).alias("share"))
    )
    return best.select(list(POS_CUSTOMER_MAP_SCHEMA)).cast(dict(POS_CUSTOMER_MAP_SCHEMA)).sort("pos_customer_id")
