"""The dbt visit marts end to end: a hand-made identity lake, a full build, then incremental builds.

The lake holds what the identity pipeline writes (visits, transaction_visit_links,
recognition_results, with the pipeline's own polars schemas) next to POS transactions: 2 shops x
3 days, a staff member, a VIP and a blocked person, a customer returning the next day and twice
in one day, a visit paying two bills, linked and unlinked bills, an empty shop-day and a dataset
(recognition_results) that has no file at all until day 3. Every mart is compared with numbers
computed here in plain Python: after the full build, after adding a day, after re-running it
(idempotency), after a backfill that changes who is "new" on a later day and empties a shop-day,
and after a full rebuild with a shorter peak-hours window.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from tests.conftest import IST, TRANSACTION_SCHEMA, read_marts, sale, write_part
from tests.conftest import assert_marts as assert_marts_equal
from watershop_dagster import catalog
from watershop_dagster.config import ShopConfig, Thresholds, WatershopConfig
from watershop_dagster.dbt import DBT_PROJECT_DIR, dbt_vars

pytestmark = pytest.mark.slow

D1, D2, D3 = "2024-03-30", "2024-03-31", "2024-04-01"  # D3 opens a new month and a new quarter
IDLE_MAX, UTILISATION = 0.25, 0.8  # the peak_hours defaults


def visit(vid: str, day: str, start: str, end: str, customer: str | None, role: str = "customer",
          person_key: str | None = None, cameras: str = "cam1") -> dict:
    entry, exit_ = datetime.fromisoformat(f"{day}T{start}"), datetime.fromisoformat(f"{day}T{end}")
    return {
        "visit_id": vid, "customer_id": customer, "person_key": person_key, "role": role,
        "entry_utc": (entry - IST).replace(tzinfo=timezone.utc), "exit_utc": (exit_ - IST).replace(tzinfo=timezone.utc),
        "entry_local": entry, "exit_local": exit_, "duration_s": (exit_ - entry).total_seconds(),
        "cameras": cameras, "n_tracks": 2, "n_faces": 12, "n_embeddings": 4, "confidence": 0.9, "ambiguous": False,
    }


STAFF = {"customer": None, "role": "staff", "person_key": "staff/ramesh"}

VISITS: dict[tuple[str, str], list[dict]] = {
    ("s1", D1): [
        visit("V1", D1, "09:00", "09:10", "c_a", cameras="cam1,cam2"),
        visit("V2", D1, "09:30", "09:35", "c_b"),
        visit("V3", D1, "07:50", "13:00", **STAFF),  # staff: never a customer
        visit("V4", D1, "10:05", "10:20", "k_vip", role="vip", person_key="vip/mla"),
        visit("V12", D1, "12:30", "12:40", "c_e"),  # late: widens the opening span (idle 11:00)
    ],
    ("s1", D2): [
        visit("V5", D2, "09:05", "09:12", "c_a"),  # returning
        visit("V6", D2, "18:00", "18:06", "c_c"),  # pays two bills
        visit("V7", D2, "18:30", "18:40", "c_a"),  # second visit the same day
        visit("V8", D2, "08:00", "10:00", "c_d"),  # a long stay
    ],
    ("s2", D1): [
        visit("W1", D1, "11:00", "11:15", "c_x"),
        visit("W2", D1, "11:20", "11:22", "k_bad", role="blocked", person_key="blocked/bad"),
    ],
    ("s2", D2): [],  # the shop was closed: empty files
}
VISITS_D3 = {
    ("s1", D3): [
        visit("V9", D3, "09:00", "09:20", "c_b"),
        visit("V10", D3, "10:00", "10:05", "c_a"),
        visit("V11", D3, "08:00", "12:00", **STAFF),
    ],
    ("s2", D3): [visit("W3", D3, "12:00", "12:30", "c_x")],
}

SALES: dict[tuple[str, str], list[dict]] = {
    ("s1", D1): [
        sale("T1", D1, "09:05", "C0001", "UPI", "20L", 2, "Paid", 2),
        sale("T2", D1, "10:10", None, "Cash", "10L", 1, "Unpaid", 3),
        sale("T3", D1, "12:00", "C0002", "Cash", "20L", 1, "Unpaid", 4),
    ],
    ("s1", D2): [
        sale("T4", D2, "09:08", "C0001", "Coin", "20L", 1, "Unpaid", 2),
        sale("T5", D2, "18:04", None, "UPI", "10L", 2, "Paid", 3),
        sale("T6", D2, "18:02", "C0003", "Cash", "20L", 1, "Paid", 4),
        sale("T7", D2, "13:00", "C0002", "UPI", "20L", 2, "Unpaid", 5),
    ],
    ("s2", D1): [
        sale("U1", D1, "11:05", "C0001", "UPI", "20L", 1, "Paid", 2),
        sale("U2", D1, "15:00", "C0009", "Cash", "10L", 4, "Unpaid", 3),
    ],
    ("s2", D2): [],
}
SALES_D3 = {
    ("s1", D3): [
        sale("T8", D3, "09:10", "C0003", "Cash", "20L", 1, "Unpaid", 2),
        sale("T9", D3, "10:02", "C0001", "UPI", "10L", 1, "Unpaid", 3),
    ],
    ("s2", D3): [
        sale("U3", D3, "12:10", None, "Cash", "20L", 1, "Unpaid", 2),
        sale("U4", D3, "12:40", "C0009", "UPI", "10L", 2, "Unpaid", 3),
    ],
}
# transaction_id -> visit_id; every other bill is unlinked
LINKED = {"T1": "V1", "T2": "V4", "T4": "V5", "T5": "V6", "T6": "V6", "T8": "V9", "T9": "V10", "U1": "W1", "U3": "W3"}

DECISIONS = {  # recognition_results exists only from D3 on
    ("s1", D3): [("t1", "matched", "c_b", "customer"), ("t2", "matched", "c_a", "customer"),
                 ("t3", "known:staff", None, "staff")],
    ("s2", D3): [("t4", "matched", "c_x", "customer"), ("t5", "unidentified", None, "unidentified"),
                 ("t6", "ambiguous", "c_y", "customer"), ("t7", "new", "c_z", "customer")],
}


# --------------------------------------------------------------------------------------- lake


def links_for(sales: list[dict], visits: list[dict]) -> list[dict]:
    by_id = {v["visit_id"]: v for v in visits}
    rows = []
    for s in sales:
        v = by_id.get(LINKED.get(s["transaction_id"]))
        rows.append({
            "transaction_id": s["transaction_id"], "timestamp_utc": s["timestamp_utc"],
            "visit_id": v and v["visit_id"], "customer_id": v and v["customer_id"],
            "person_key": v and v["person_key"], "role": v and v["role"], "pos_customer_id": s["customer_id"],
            "link_confidence": 0.85 if v else 0.0, "n_candidates": 1 if v else 0, "seen_gap_s": 3.0 if v else None,
            "reason": None if v else ("no visit within tolerance" if visits else "no visits that day"),
        })
    return rows


def recognition_rows(decisions: list[tuple]) -> list[dict]:
    return [
        {"track_id": t, "camera": "cam1", "start_utc": datetime(2024, 4, 1, 4, tzinfo=timezone.utc),
         "end_utc": datetime(2024, 4, 1, 4, 1, tzinfo=timezone.utc), "n_embeddings": 3, "person_id": "p_" + t,
         "n_person_tracks": 1, "best_match": customer, "best_distance": 0.3, "track_distance": 0.31,
         "second_match": "c_q", "second_distance": 0.7, "known_match": None, "known_distance": None,
         "decision": decision, "ambiguous": decision == "ambiguous", "reused": False, "customer_id": customer,
         "person_key": "staff/ramesh" if role == "staff" else None, "role": role}
        for t, decision, customer, role in decisions
    ]


def write_identity(lake: Path, dataset: str, shop: str, day: str, rows: list[dict]) -> None:
    path = lake / dataset / f"shop_id={shop}" / f"date={day}" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = catalog.dataset(dataset).schema
    pl.DataFrame(rows, schema=schema, orient="row").write_parquet(path)


def write_days(lake: Path, visits: dict, sales: dict) -> None:
    for (shop, day), rows in sales.items():
        write_part(lake, "transactions", shop, day, rows, TRANSACTION_SCHEMA)
        write_identity(lake, "transaction_visit_links", shop, day, links_for(rows, visits[(shop, day)]))
    for (shop, day), rows in visits.items():
        write_identity(lake, "visits", shop, day, rows)


# ----------------------------------------------------------------------- expected, in Python


def r(value) -> float | None:
    return None if value is None else round(float(value), 4)


def groups(rows, *keys):
    out = defaultdict(list)
    for row in rows:
        out[tuple(row[k] for k in keys)].append(row)
    return out


def quantile_cont(values: list[float], q: float) -> float:
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (pos - lo)


def expected_marts(visits: dict, sales: dict, recognition: dict, window_days: int = 28) -> dict:
    txns = {(shop, s["transaction_id"]): {**s, "shop_id": shop, "date": date.fromisoformat(day)}
            for (shop, day), rows in sales.items() for s in rows}
    all_visits = [{**v, "shop_id": shop, "date": date.fromisoformat(day)}
                  for (shop, day), rows in visits.items() for v in rows]
    visit_ids = {(v["shop_id"], v["visit_id"]) for v in all_visits}
    links = {key: LINKED.get(key[1]) if (key[0], LINKED.get(key[1])) in visit_ids else None for key in txns}
    customer_of = {(v["shop_id"], v["visit_id"]): v["customer_id"] for v in all_visits}

    log = {}
    for v in all_visits:
        bills = sorted((txns[k] for k, vid in links.items() if k[0] == v["shop_id"] and vid == v["visit_id"]),
                       key=lambda t: t["timestamp_local"])
        log[(v["shop_id"], v["visit_id"])] = (
            v["date"], v["customer_id"], v["role"], v["entry_local"], v["exit_local"], r(v["duration_s"]),
            v["cameras"], v["n_faces"], bills[0]["transaction_id"] if bills else None, len(bills),
            r(sum(t["amount"] for t in bills)) if bills else None,
        )
    customers = [v for v in all_visits if v["role"] != "staff"]
    first_day = {k: min(v["date"] for v in rows) for k, rows in groups(customers, "shop_id", "customer_id").items()}

    def period_totals(rows, start_of):
        people = {v["customer_id"] for v in rows}
        key = (rows[0]["shop_id"], start_of(rows[0]["date"]))
        new = {c for c in people if start_of(first_day[(key[0], c)]) == key[1]}
        return (len(rows), len(people), len(new), len(people - new))

    month = lambda d: d.replace(day=1)  # noqa: E731
    quarter = lambda d: d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)  # noqa: E731
    by_day = groups(customers, "shop_id", "date")
    counts = {
        k: (len(rows), min(v["entry_local"] for v in rows), max(v["entry_local"] for v in rows),
            r(sum(v["duration_s"] for v in rows) / len(rows)))
        for k, rows in groups(customers, "shop_id", "customer_id").items()
    }

    # peak hours: see dbt_project/models/marts/peak_hours.sql
    peaks = {}
    for (shop,), rows in groups(customers, "shop_id").items():
        end = max(v["date"] for v in rows)
        rows = [v for v in rows if v["date"] > end - timedelta(days=window_days)]
        days = groups(rows, "date")
        opens = sorted(min(v["entry_local"] for v in d).hour for d in days.values())
        closes = sorted(max(v["exit_local"] for v in d).hour for d in days.values())
        open_h, close_h = opens[(len(opens) - 1) // 2], closes[len(closes) // 2]  # lower / upper median
        per_hour = defaultdict(list)
        for v in rows:
            per_hour[v["entry_local"].hour].append(v)
        hours = set(range(open_h, close_h + 1)) | set(per_hour)
        avg = {h: len(per_hour.get(h, [])) / len(days) for h in hours}
        threshold = quantile_cont(list(avg.values()), 0.75)
        for h in hours:
            duration = sum(v["duration_s"] for v in per_hour[h]) / len(per_hour[h]) if per_hour.get(h) else 0.0
            staff = max(1, math.ceil(round(avg[h] * duration / 3600 / UTILISATION, 6)))
            in_span = open_h <= h <= close_h
            is_peak, is_idle = avg[h] >= threshold and avg[h] > IDLE_MAX, in_span and avg[h] <= IDLE_MAX
            peaks[(shop, h)] = (r(avg[h]), is_peak, is_idle, staff)

    def buyer(key):
        vid = links[key]
        registry = customer_of.get((key[0], vid)) if vid else None
        return (registry, "registry") if registry else (txns[key]["customer_id"], "pos")

    spent = defaultdict(list)
    for key, t in txns.items():
        who, kind = buyer(key)
        if who is not None:
            spent[(key[0], who)].append((t, kind))

    return {
        "visit_log": log,
        "daily_visits": {
            k: (*period_totals(rows, lambda d: d), r(sum(v["duration_s"] for v in rows) / len(rows)))
            for k, rows in by_day.items()
        },
        "monthly_visits": {
            k: period_totals(rows, month)
            for k, rows in groups([{**v, "m": month(v["date"])} for v in customers], "shop_id", "m").items()
        },
        "quarterly_visits": {
            k: period_totals(rows, quarter)
            for k, rows in groups([{**v, "q": quarter(v["date"])} for v in customers], "shop_id", "q").items()
        },
        "unique_customers": {
            k: (min(v["entry_local"] for v in rows), max(v["exit_local"] for v in rows), len(rows),
                len({v["date"] for v in rows}), max(rows, key=lambda v: v["entry_local"])["role"])
            for k, rows in groups(customers, "shop_id", "customer_id").items()
        },
        "customer_visit_counts": counts,
        "repeat_visits": {k: v for k, v in counts.items() if v[0] >= 2},
        "new_customers": {(s, d, c): True for (s, d), rows in by_day.items()
                          for c in {v["customer_id"] for v in rows} if first_day[(s, c)] == d},
        "returning_customers": {(s, d, c): first_day[(s, c)] for (s, d), rows in by_day.items()
                                for c in {v["customer_id"] for v in rows} if first_day[(s, c)] < d},
        "recognition_results": {
            (shop, date.fromisoformat(day), t): (decision, customer)
            for (shop, day), rows in recognition.items() for t, decision, customer, _role in rows
        },
        "traffic_per_hour": {
            k: (len(rows), len({v["customer_id"] for v in rows}))
            for k, rows in groups([{**v, "h": v["entry_local"].hour} for v in customers],
                                  "shop_id", "date", "h").items()
        },
        "first_last_customer": {
            k: (min(v["entry_local"] for v in rows), max(v["exit_local"] for v in rows),
                min(rows, key=lambda v: v["entry_local"])["customer_id"],
                max(rows, key=lambda v: v["exit_local"])["customer_id"])
            for k, rows in by_day.items()
        },
        "peak_hours": peaks,
        "transaction_visit_links": {
            (shop, t["date"], tid): (links[(shop, tid)], customer_of.get((shop, links[(shop, tid)])), t["customer_id"])
            for (shop, tid), t in txns.items()
        },
        "visits_without_payment": {
            (v["shop_id"], v["visit_id"]): (v["date"], v["customer_id"], r(v["duration_s"]))
            for v in customers if log[(v["shop_id"], v["visit_id"])][9] == 0
        },
        "total_spent": {
            k: (len(rows), r(sum(t["amount"] for t, _ in rows)),
                r(sum(t["amount"] for t, _ in rows if t["payment_status"] == "Paid")), rows[0][1])
            for k, rows in spent.items()
        },
        "repeat_defaulters": {
            k: (len(unpaid), r(sum(t["amount"] for t, _ in unpaid)), unpaid[0][1])
            for k, rows in spent.items()
            if len(unpaid := [(t, kind) for t, kind in rows if t["payment_status"] == "Unpaid"]) >= 2
        },
    }


# ------------------------------------------------------------------------ actual, from DuckDB

MART_QUERIES = {  # (key width, query)
    "visit_log": (2, """select shop_id, visit_id, date, customer_id, role, entry_time, exit_time, duration_s,
        cameras, n_faces, transaction_id, transactions, amount from visit_log"""),
    "daily_visits": (2, """select shop_id, date, visits, unique_customers, new_customers, returning_customers,
        avg_duration_s from daily_visits"""),
    "monthly_visits": (2, "select shop_id, month, visits, unique_customers, new_customers, returning_customers from monthly_visits"),
    "quarterly_visits": (2, """select shop_id, quarter, visits, unique_customers, new_customers, returning_customers
        from quarterly_visits"""),
    "unique_customers": (2, "select shop_id, customer_id, first_seen, last_seen, visits, days_visited, role from unique_customers"),
    "customer_visit_counts": (2, """select shop_id, customer_id, visits, first_visit, last_visit, avg_duration_s
        from customer_visit_counts"""),
    "repeat_visits": (2, "select shop_id, customer_id, visits, first_visit, last_visit, avg_duration_s from repeat_visits"),
    "new_customers": (3, "select shop_id, date, customer_id, true from new_customers"),
    "returning_customers": (3, "select shop_id, date, customer_id, first_visit_date from returning_customers"),
    "recognition_results": (3, "select shop_id, date, track_id, decision, customer_id from recognition_results"),
    "traffic_per_hour": (3, "select shop_id, date, hour, visits, unique_customers from traffic_per_hour"),
    "first_last_customer": (2, """select shop_id, date, first_entry, last_exit, first_customer_id, last_customer_id
        from first_last_customer"""),
    "peak_hours": (2, "select shop_id, hour, avg_visits_per_day, is_peak, is_idle, suggested_staff from peak_hours"),
    "transaction_visit_links": (3, """select shop_id, date, transaction_id, visit_id, customer_id, pos_customer_id
        from transaction_visit_links"""),
    "visits_without_payment": (2, "select shop_id, visit_id, date, customer_id, duration_s from visits_without_payment"),
    "total_spent": (2, "select shop_id, customer_id, transactions, amount, paid_amount, customer_id_kind from total_spent"),
    "repeat_defaulters": (2, "select shop_id, customer_id, unpaid_count, amount_owed, customer_id_kind from repeat_defaulters"),
}


PLACES = 4


def actual_marts(db: Path) -> dict:
    return read_marts(db, MART_QUERIES, PLACES)


def assert_marts(db: Path, expected: dict) -> dict:
    return assert_marts_equal(db, MART_QUERIES, expected, PLACES)


def test_visit_marts_full_then_incremental_match_python(dbt_build):
    lake, db = dbt_build.lake, dbt_build.db
    visits, sales, recognition = dict(VISITS), dict(SALES), {}

    # 1. Full build of D1-D2. recognition_results has no file at all yet (typed empty fallback).
    write_days(lake, visits, sales)
    dbt_build()
    first = assert_marts(db, expected_marts(visits, sales, recognition))
    assert first["recognition_results"] == {}
    assert first["daily_visits"][("s1", date(2024, 3, 31))][:4] == (4, 3, 2, 1)  # c_c, c_d new; c_a back
    assert first["visit_log"][("s1", "V6")][-3:] == ("T6", 2, 75.0)  # two bills, the earlier one shown
    assert ("s1", "V3") in first["visit_log"] and ("s1", "V3") not in first["visits_without_payment"]  # staff
    assert first["first_last_customer"][("s1", date(2024, 3, 30))] == (
        datetime(2024, 3, 30, 9, 0), datetime(2024, 3, 30, 12, 40), "c_a", "c_e")  # staff's 07:50-13:00 ignored
    assert first["total_spent"][("s1", "c_a")] == (2, 105.0, 70.0, "registry")
    assert first["total_spent"][("s1", "C0002")][-1] == "pos"
    assert first["repeat_defaulters"] == {("s1", "C0002"): (2, 105.0, "pos")}  # T3 + T7, never linked
    assert ("s2", date(2024, 3, 31)) not in first["daily_visits"]  # the empty shop-day has no row
    assert first["peak_hours"][("s1", 8)][3] == 2  # the 2 h stay: 0.5 visits/day x 2 h / 0.8 -> 2 staff
    assert first["peak_hours"][("s1", 9)][1:3] == (True, False)  # 1.5 visits/day: the top quartile
    assert first["peak_hours"][("s1", 14)][1:] == (False, True, 1)  # open (span 8-18) but no visits: idle

    # 2. D3 arrives (new month and quarter, recognition results appear), built for every shop at once.
    for key, rows in VISITS_D3.items():
        visits[key], sales[key] = rows, SALES_D3[key]
    write_days(lake, VISITS_D3, SALES_D3)
    for (shop, day), rows in DECISIONS.items():
        write_identity(lake, "recognition_results", shop, day, recognition_rows(rows))
        recognition[(shop, day)] = rows
    dbt_build(None, D3)
    added = assert_marts(db, expected_marts(visits, sales, recognition))
    assert added["returning_customers"][("s1", date(2024, 4, 1), "c_b")] == date(2024, 3, 30)
    assert added["repeat_defaulters"][("s1", "c_a")] == (2, 55.0, "registry")  # T4 + T9, linked to c_a
    assert added["quarterly_visits"][("s1", date(2024, 4, 1))] == (2, 2, 0, 2)
    assert added["peak_hours"][("s1", 11)][2] and not added["peak_hours"][("s1", 12)][2]  # span 9-12 now

    # 3. Re-running a shop-day changes nothing.
    dbt_build("s1", D3)
    assert actual_marts(db) == added

    # 4. Backfill of D1 (every shop): s1 loses c_b's visit, so c_b is new on D3, a later day;
    #    s2's D1 footage turns out empty, so its bills fall back to their POS customer ids.
    visits[("s1", D1)] = [v for v in VISITS[("s1", D1)] if v["visit_id"] != "V2"]
    visits[("s2", D1)] = []
    backfill = [("s1", D1), ("s2", D1)]
    write_days(lake, {k: visits[k] for k in backfill}, {k: sales[k] for k in backfill})
    dbt_build(None, D1)
    backfilled = assert_marts(db, expected_marts(visits, sales, recognition))
    assert ("s1", date(2024, 4, 1), "c_b") in backfilled["new_customers"]
    assert not any(k[:2] == ("s2", date(2024, 3, 30)) for k in backfilled["traffic_per_hour"])
    assert backfilled["total_spent"][("s2", "C0001")][-1] == "pos" and ("s2", "c_x") in backfilled["total_spent"]

    # 5. A full rebuild lands on the incremental state; with a 1-day peak window only D3 counts.
    dbt_build(None, None, "--vars", json.dumps({"peak_window_days": 1}))
    rebuilt = assert_marts(db, expected_marts(visits, sales, recognition, window_days=1))
    assert {k: v for k, v in rebuilt.items() if k != "peak_hours"} == \
        {k: v for k, v in backfilled.items() if k != "peak_hours"}
    assert {h for (shop, h) in rebuilt["peak_hours"] if shop == "s1"} == {9, 10}

    # 6. The visit_log_times_sane test checks the var max_visit_hours: V8's 2 h stay breaks a 1 h limit.
    with pytest.raises(pytest.fail.Exception, match="visit_log_times_sane"):
        dbt_build(None, None, "--select", "visit_log_times_sane", "--vars", json.dumps({"max_visit_hours": 1}))


def test_max_visit_hours_reaches_dbt_from_the_config():
    """dbt's default is the config's default, and a build's vars carry the configured value."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"]["max_visit_hours"] == Thresholds().max_visit_hours
    config = WatershopConfig(shops=[ShopConfig(id="s1")], thresholds=Thresholds(max_visit_hours=2.5))
    assert dbt_vars(config, {"shop_id": "s1", "date": D1}).items() >= {"shop_id": "s1", "date": D1, "max_visit_hours": 2.5}.items()


def test_a_merged_customer_is_named_by_the_surviving_id_in_every_mart(dbt_build):
    """customer_merges (identity.merges) renames a person in the marts without rewriting the lake:
    after the merge and a rebuild from the merged id's first day, every visit mart equals the Python
    expectation computed as if the person had had the surviving id all along."""
    lake, db = dbt_build.lake, dbt_build.db
    write_days(lake, VISITS, SALES)
    dbt_build()
    assert ("s1", "c_c") in actual_marts(db)["total_spent"]

    # D3's registry build finds that c_c (first seen D2) is c_b (first seen D1)
    merge = {"customer_id": "c_c", "surviving_id": "c_b", "first_seen": date(2024, 3, 31), "linkage": 0.46,
             "runner_up": 0.71, "n_exemplars": 3, "n_exemplars_surviving": 6}
    write_identity(lake, "customer_merges", "s1", D3, [merge])
    write_identity(lake, "customer_merges", "s1", D2, [])
    visits, sales = dict(VISITS), dict(SALES)
    for key, rows in VISITS_D3.items():
        visits[key], sales[key] = rows, SALES_D3[key]
    write_days(lake, VISITS_D3, SALES_D3)
    dbt_build("s1", D2, day_to=D3)  # assets.marts.merges_scope starts the run at first_seen
    dbt_build("s2", D3)
    renamed = {key: [{**v, "customer_id": "c_b" if v["customer_id"] == "c_c" else v["customer_id"]} for v in rows]
               for key, rows in visits.items()}
    actual = actual_marts(db)
    assert actual == expected_marts(renamed, sales, {})
    for mart in ("unique_customers", "customer_visit_counts", "total_spent"):
        assert ("s1", "c_c") not in actual[mart], mart
    with duckdb.connect(str(db)) as con:
        assert con.execute("select customer_id, surviving_id, merged_into, decided_on from customer_merges").fetchall() \
            == [("c_c", "c_b", "c_b", date(2024, 4, 1))]
