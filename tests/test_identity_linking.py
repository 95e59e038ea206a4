"""Linking POS transactions to visits: inside the span, tolerance, ties, unlinked, POS id map."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from watershop_dagster.identity.linking import (
    POS_CUSTOMER_MAP_SCHEMA,
    REASON_NO_VISIT_NEAR,
    REASON_NO_VISITS,
    TRANSACTION_VISIT_LINKS_SCHEMA,
    link_transactions_to_visits,
    pos_customer_map,
    visits_without_transaction,
)
from watershop_dagster.identity.visits import VISITS_SCHEMA

T0 = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def visits(*rows) -> pl.DataFrame:
    out = []
    for vid, cid, start, end, role in rows:
        out.append({"visit_id": vid, "customer_id": cid, "person_key": None if role == "customer" else f"{role}/x",
                    "role": role, "entry_utc": at(start), "exit_utc": at(end), "entry_local": None, "exit_local": None,
                    "duration_s": end - start, "cameras": "counter", "n_tracks": 1, "n_faces": 10, "n_embeddings": 2,
                    "confidence": 0.9, "ambiguous": False})
    return pl.DataFrame(out, schema=VISITS_SCHEMA)


def transactions(*rows) -> pl.DataFrame:
    return pl.DataFrame(
        [{"transaction_id": tid, "timestamp_utc": at(s), "customer_id": pos} for tid, s, pos in rows],
        schema={"transaction_id": pl.Utf8, "timestamp_utc": pl.Datetime("us", "UTC"), "customer_id": pl.Utf8},
    )


def sightings(*rows) -> pl.DataFrame:
    return pl.DataFrame([{"visit_id": v, "ts_utc": at(s)} for v, s in rows],
                        schema={"visit_id": pl.Utf8, "ts_utc": pl.Datetime("us", "UTC")})


def test_links_inside_span_tolerance_and_unlinked():
    v = visits(("v1", "c1", 0, 60, "customer"), ("v2", "c2", 100, 160, "customer"))
    tx = transactions(("t1", 30, "L1"), ("t2", 170, None), ("t3", 1000, None), ("t4", 62, None))
    links = link_transactions_to_visits(tx, v, tolerance_s=30)
    assert links.schema == TRANSACTION_VISIT_LINKS_SCHEMA
    rows = {r["transaction_id"]: r for r in links.iter_rows(named=True)}
    assert rows["t1"]["visit_id"] == "v1" and rows["t1"]["customer_id"] == "c1" and rows["t1"]["pos_customer_id"] == "L1"
    assert rows["t1"]["reason"] is None and rows["t1"]["link_confidence"] > 0.8
    assert rows["t2"]["visit_id"] == "v2" and rows["t2"]["link_confidence"] < rows["t1"]["link_confidence"]
    assert rows["t3"]["visit_id"] is None and rows["t3"]["reason"] == REASON_NO_VISIT_NEAR
    assert rows["t3"]["link_confidence"] == 0.0
    # 2 s after v1 ended and 38 s before v2: the nearer visit
    assert rows["t4"]["visit_id"] == "v1"
    empty = link_transactions_to_visits(tx, visits())
    assert set(empty["reason"]) == {REASON_NO_VISITS}


def test_inside_span_beats_nearby_visit():
    v = visits(("v1", "c1", 0, 60, "customer"), ("v2", "c2", 62, 120, "customer"))
    links = link_transactions_to_visits(transactions(("t", 65, None)), v, tolerance_s=90)
    assert links["visit_id"].to_list() == ["v2"]
    assert links["n_candidates"].to_list() == [2]


def test_tie_goes_to_the_person_seen_closest_in_time():
    v = visits(("v1", "c1", 0, 100, "customer"), ("v2", "c2", 10, 120, "customer"))
    seen = sightings(("v1", 5), ("v1", 20), ("v1", 95), ("v2", 48), ("v2", 52), ("v2", 110))
    links = link_transactions_to_visits(transactions(("t1", 50, None), ("t2", 96, None)), v, seen)
    assert links["visit_id"].to_list() == ["v2", "v1"]
    # a clear winner (2 s vs 30 s) is more confident than a close call
    close = link_transactions_to_visits(transactions(("t", 50, None)), v, sightings(("v1", 47), ("v2", 48)))
    assert close["visit_id"].to_list() == ["v2"]
    assert close["link_confidence"][0] < links["link_confidence"][0]


def test_staff_visits_are_never_linked():
    v = visits(("s", None, 0, 500, "staff"), ("v1", "c1", 300, 360, "customer"), ("k", "k_1", 600, 660, "vip"))
    links = link_transactions_to_visits(transactions(("t1", 100, None), ("t2", 330, None), ("t3", 630, None)), v,
                                        tolerance_s=30)
    assert links["visit_id"].to_list() == [None, "v1", "k"]
    assert links["role"].to_list() == [None, "customer", "vip"]
    lonely = visits_without_transaction(v, links.filter(pl.col("transaction_id") != "t3"))
    assert lonely["visit_id"].to_list() == ["k"]  # staff visits are not listed


def test_pos_customer_map_by_majority():
    links = pl.DataFrame(
        {
            "pos_customer_id": ["L1", "L1", "L1", "L2", "L2", None, "L3"],
            "customer_id": ["c1", "c1", "c2", "c3", "c4", "c9", None],
            "link_confidence": [0.9, 0.8, 0.9, 0.5, 0.9, 0.9, 0.0],
            "date": [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 2), date(2024, 5, 1), date(2024, 5, 3),
                     date(2024, 5, 1), date(2024, 5, 1)],
        }
    )
    mapping = pos_customer_map(links)
    assert mapping.schema == POS_CUSTOMER_MAP_SCHEMA
    rows = {r["pos_customer_id"]: r for r in mapping.iter_rows(named=True)}
    assert set(rows) == {"L1", "L2"}
    assert rows["L1"]["customer_id"] == "c1" and rows["L1"]["n_links"] == 2 and rows["L1"]["n_pos_links"] == 3
    assert rows["L1"]["first_date"] == date(2024, 5, 1) and rows["L1"]["last_date"] == date(2024, 5, 2)
    assert rows["L2"]["customer_id"] == "c4"  # a 1:1 tie goes to the more confident links
