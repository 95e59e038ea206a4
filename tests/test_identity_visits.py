"""Visit segmentation: short gaps stay one visit, long gaps split, min/max duration, alerts, checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from watershop_dagster.config import Thresholds
from watershop_dagster.identity.registry import FACE_IDENTITIES_SCHEMA
from watershop_dagster.identity.visits import (
    ALERTS_SCHEMA,
    VISITS_SCHEMA,
    segment_visits,
    visit_alerts,
    visit_problems,
    visit_tracks,
)

T0 = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
TH = Thresholds(visit_gap_seconds=60, min_visit_seconds=2, max_visit_hours=6)


def track(tid, start, end, customer="c1", role="customer", person_key=None, camera="counter", n_emb=2, conf=0.9,
          ambiguous=False):
    return {
        "track_id": tid, "camera": camera, "start_utc": T0 + timedelta(seconds=start), "end_utc": T0 + timedelta(seconds=end),
        "n_detections": int(end - start) + 1, "n_embeddings": n_emb, "person_id": "p", "customer_id": customer,
        "person_key": person_key, "role": role, "decision": "new", "distance": None, "confidence": conf,
        "ambiguous": ambiguous,
    }


def identities(*rows) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=FACE_IDENTITIES_SCHEMA)


def test_short_gap_one_visit_long_gap_two():
    ids = identities(
        track("a", 0, 30), track("b", 40, 90, camera="door"),  # 10 s out of view: same visit
        track("c", 90 + 61, 200),  # 61 s later: a new visit
    )
    visits = segment_visits(ids, TH, "Asia/Kolkata", "s1")
    assert visits.schema == VISITS_SCHEMA
    assert visits.height == 2
    first, second = visits.rows(named=True)
    assert first["entry_utc"] == T0 and first["exit_utc"] == T0 + timedelta(seconds=90)
    assert first["duration_s"] == 90 and first["cameras"] == "counter,door" and first["n_tracks"] == 2
    assert first["n_faces"] == 31 + 51 and first["n_embeddings"] == 4
    assert first["entry_local"] == datetime(2024, 5, 1, 9, 30)  # Asia/Kolkata, naive
    assert second["entry_utc"] == T0 + timedelta(seconds=151)
    assert 0 < first["confidence"] <= 1
    # exactly the gap threshold still joins
    assert segment_visits(identities(track("a", 0, 30), track("b", 90, 100)), TH, "UTC", "s1").height == 1


def test_people_are_segmented_separately_and_ids_deterministic():
    ids = identities(track("a", 0, 30, customer="c1"), track("b", 10, 50, customer="c2"),
                     track("s", 0, 500, customer=None, role="staff", person_key="staff/x"))
    visits = segment_visits(ids, TH, "UTC", "s1")
    assert sorted(visits["role"].to_list()) == ["customer", "customer", "staff"]
    staff = visits.filter(pl.col("role") == "staff").row(0, named=True)
    assert staff["customer_id"] is None and staff["person_key"] == "staff/x"
    again = segment_visits(ids.reverse(), TH, "UTC", "s1")
    assert again["visit_id"].to_list() == visits["visit_id"].to_list()
    assert visit_problems(visits) == []


def test_short_visits_dropped_and_unidentified_ignored():
    ids = identities(track("a", 0, 1), track("b", 500, 500.5, customer="c2"),
                     track("u", 0, 100, customer=None, role="unidentified"))
    assert segment_visits(ids, TH, "UTC", "s1").is_empty()
    assert segment_visits(identities(), TH, "UTC", "s1").schema == VISITS_SCHEMA


def test_visits_capped_at_max_hours():
    th = Thresholds(visit_gap_seconds=60, min_visit_seconds=2, max_visit_hours=1)
    # tracks back to back for 2.5 h, and one single track of 2.5 h
    chain = [track(f"t{k}", k * 600, k * 600 + 590) for k in range(15)]
    visits = segment_visits(identities(*chain), th, "UTC", "s1")
    assert visits.height == 3 and visits["duration_s"].max() <= 3600
    long = segment_visits(identities(track("l", 0, 9000, customer="c9")), th, "UTC", "s1")
    assert long["duration_s"].to_list() == [3600, 3600, 1800]
    assert visit_problems(long) == []


def test_alerts_for_vip_and_blocked_only():
    ids = identities(
        track("v", 0, 30, customer="k_1", role="vip", person_key="vip/ann", camera="door"),
        track("v2", 20, 40, customer="k_1", role="vip", person_key="vip/ann", camera="counter"),
        track("b", 100, 130, customer="k_2", role="blocked", person_key="blocked/bob"),
        track("c", 0, 30), track("s", 0, 30, customer=None, role="staff", person_key="staff/x"),
    )
    visits = segment_visits(ids, TH, "UTC", "s1")
    alerts = visit_alerts(visits, visit_tracks(visits, ids))
    assert alerts.schema == ALERTS_SCHEMA
    assert alerts.select("person_key", "role", "camera").rows() == [("vip/ann", "vip", "door"), ("blocked/bob", "blocked", "counter")]
    assert set(alerts["visit_id"]) <= set(visits["visit_id"])
    assert alerts["ts_utc"].to_list() == [T0, T0 + timedelta(seconds=100)]


def test_visit_problems_detects_bad_rows():
    ids = identities(track("a", 0, 30), track("b", 200, 260))
    visits = segment_visits(ids, TH, "UTC", "s1")
    first = pl.col("entry_utc") == T0
    backwards = visits.with_columns(pl.when(first).then(pl.col("entry_utc") + timedelta(seconds=100))
                                    .otherwise(pl.col("entry_utc")).alias("entry_utc"))
    assert any("exit before" in p for p in visit_problems(backwards))
    overlapping = visits.with_columns(pl.when(first).then(pl.col("exit_utc") + timedelta(seconds=200))
                                      .otherwise(pl.col("exit_utc")).alias("exit_utc"))
    assert any("overlap" in p for p in visit_problems(overlapping))
    assert visit_problems(pl.concat([visits, visits.head(1)])) == ["duplicate visit_id", "1 visits overlap an earlier visit of the same person"]


def test_same_person_back_at_the_same_spot_minutes_later_is_two_visits():
    # issue #10 class 3: two visits 7.5 min apart, both at the counter, were merged into one
    # 10-minute visit by a same-place bridging rule; the configured 60 s gap is the rule
    ids = identities(track("a", 0, 80), track("b", 80 + 450, 600))
    visits = segment_visits(ids, TH, "UTC", "s1")
    assert visits.height == 2
    assert visits["duration_s"].to_list() == [80, 70]
    assert visits["entry_utc"].to_list() == [T0, T0 + timedelta(seconds=530)]


def test_dropout_shorter_than_the_gap_stays_one_visit():
    # face lost for 45 s (< 60 s gap) while at the counter: one visit, entry/exit from first/last sight
    ids = identities(track("a", 0, 50), track("b", 95, 140), track("c", 140 + 60, 210))
    visits = segment_visits(ids, TH, "UTC", "s1")
    assert visits["n_tracks"].to_list() == [3]
    assert visits["duration_s"].to_list() == [210]
    # one second more than the gap splits
    assert segment_visits(identities(track("a", 0, 50), track("b", 111, 140)), TH, "UTC", "s1").height == 2
