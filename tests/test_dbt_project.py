"""The dbt project end to end: a hand-made lake, a full build, then shop-day incremental builds.

Every mart is compared with numbers computed here in plain Python from the same rows, after the
full build, after adding days one shop-day at a time, after re-running a day (idempotency), after
changing a day's file and after emptying one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import TRANSACTION_SCHEMA, read_marts, sale, write_part
from tests.conftest import assert_marts as assert_marts_equal

pytestmark = pytest.mark.slow

QUARANTINE_SCHEMA = {"source_file": pl.Utf8, "source_line": pl.Int32, "raw": pl.Utf8, "reason": pl.Utf8}

D1, D2, D3 = "2024-01-30", "2024-01-31", "2024-02-01"  # D3 starts a new month


# (shop, day) -> rows. Walk-ins (customer None), unpaid sales, a bill listed twice in one file
# (the later line wins), a customer in both shops, and an empty partition file.
LAKE: dict[tuple[str, str], list[dict]] = {
    ("s1", D1): [
        sale("A1", D1, "07:05", "c1", "Cash", "20L", 2, "Paid", 2),
        sale("A2", D1, "08:40", None, "UPI", "10L", 1, "Paid", 3),
        sale("A3", D1, "09:15", "c2", "Coin", "20L", 1, "Unpaid", 4),
        sale("A4", D1, "18:30", "c1", "UPI", "10L", 3, "Paid", 5),
    ],
    ("s1", D2): [
        sale("A5", D2, "06:55", "c2", "Cash", "20L", 2, "Unpaid", 2),
        sale("A6", D2, "12:10", None, "Cash", "20L", 1, "Unpaid", 3),
        sale("A7", D2, "13:00", "c3", "UPI", "10L", 2, "Paid", 4, amount=38.5),
        sale("A7", D2, "13:00", "c3", "UPI", "10L", 2, "Paid", 5, amount=40.0),  # re-listed bill
    ],
    ("s2", D1): [
        sale("B1", D1, "10:00", "c1", "UPI", "20L", 1, "Paid", 2),
        sale("B2", D1, "10:30", "c9", "Cash", "10L", 4, "Unpaid", 3),
    ],
    ("s2", D2): [],  # the shop was closed: an empty file
}
LATER = {
    ("s1", D3): [
        sale("A8", D3, "08:00", "c1", "Coin", "20L", 1, "Unpaid", 2),
        sale("A9", D3, "20:45", "c3", "Cash", "20L", 2, "Paid", 3),
    ],
    ("s2", D3): [
        sale("B3", D3, "09:00", "c9", "UPI", "10L", 2, "Unpaid", 2),
        sale("B4", D3, "09:30", None, "Cash", "20L", 1, "Paid", 3),
    ],
}
QUARANTINE = {
    ("s1", D1): [
        {"source_file": f"pos_{D1}.csv", "source_line": 6, "raw": "A10,,,", "reason": "missing_fields"},
        {"source_file": f"pos_{D1}.csv", "source_line": 7, "raw": "A11,x", "reason": "missing_fields"},
        {"source_file": f"pos_{D1}.csv", "source_line": 8, "raw": "A12,...,5L", "reason": "bad_can_size"},
    ],
    ("s2", D1): [
        {"source_file": f"pos_{D1}.csv", "source_line": 4, "raw": "B9,-5", "reason": "bad_amount"},
    ],
}


# --------------------------------------------------------------------------------------- lake


def write_transactions(lake: Path, partitions: dict[tuple[str, str], list[dict]]) -> None:
    for (shop, day), rows in partitions.items():
        write_part(lake, "transactions", shop, day, rows, TRANSACTION_SCHEMA)


# ----------------------------------------------------------------------- expected, in Python


def money(value) -> float:
    return round(float(value), 2)


def expected_marts(partitions: dict[tuple[str, str], list[dict]], quarantine: dict[tuple[str, str], list[dict]]) -> dict:
    txns = []
    for (shop, day), rows in partitions.items():
        latest: dict[str, dict] = {}
        for row in rows:
            if row["transaction_id"] not in latest or row["source_line"] > latest[row["transaction_id"]]["source_line"]:
                latest[row["transaction_id"]] = row
        txns += [{**row, "shop_id": shop, "date": date.fromisoformat(day)} for row in latest.values()]

    def totals(rows):
        return (
            len(rows),
            sum(r["number_of_cans"] for r in rows),
            money(sum(r["amount"] for r in rows)),
            money(sum(r["amount"] for r in rows if r["payment_status"] == "Paid")),
            money(sum(r["amount"] for r in rows if r["payment_status"] == "Unpaid")),
        )

    def group(rows, *keys):
        groups = defaultdict(list)
        for row in rows:
            groups[tuple(row[k] for k in keys)].append(row)
        return groups

    known = [t for t in txns if t["customer_id"] is not None]
    unpaid = [t for t in txns if t["payment_status"] == "Unpaid"]
    daily = {
        key: (*totals(rows), len({r["customer_id"] for r in rows} - {None}), sum(r["customer_id"] is None for r in rows))
        for key, rows in group(txns, "shop_id", "date").items()
    }
    monthly = defaultdict(list)
    for (shop, day), values in daily.items():
        monthly[(shop, day.replace(day=1))].append(values)
    return {
        "transactions": {
            (t["shop_id"], t["date"], t["transaction_id"]): (
                t["customer_id"], t["payment_mode"], t["can_size"], t["number_of_cans"], money(t["amount"]),
                t["payment_status"], t["timestamp_local"].hour, t["date"].replace(day=1),
            )
            for t in txns
        },
        "payment_summary": {k: totals(v) for k, v in group(txns, "shop_id", "date", "payment_mode").items()},
        "cans_per_day": {k: totals(v)[:3] for k, v in group(txns, "shop_id", "date", "can_size").items()},
        "daily_revenue": daily,
        "monthly_revenue": {
            k: (len(v), sum(x[0] for x in v), sum(x[1] for x in v), money(sum(x[2] for x in v)),
                money(sum(x[3] for x in v)), money(sum(x[4] for x in v)))
            for k, v in monthly.items()
        },
        "total_spent": {
            k: (*totals(v), min(r["timestamp_local"] for r in v), max(r["timestamp_local"] for r in v))
            for k, v in group(known, "shop_id", "customer_id").items()
        },
        "cans_per_customer": {k: totals(v)[:3] for k, v in group(known, "shop_id", "customer_id", "can_size").items()},
        "unpaid": {(t["shop_id"], t["date"], t["transaction_id"]): (t["customer_id"], money(t["amount"])) for t in unpaid},
        "repeat_defaulters": {
            k: (len(v), money(sum(r["amount"] for r in v)))
            for k, v in group([t for t in unpaid if t["customer_id"]], "shop_id", "customer_id").items()
            if len(v) >= 2
        },
        "quarantine_summary": {
            (shop, date.fromisoformat(day), reason): count
            for (shop, day), rows in quarantine.items()
            for reason, count in _count(r["reason"] for r in rows).items()
        },
    }


def _count(values) -> dict:
    counts: dict = defaultdict(int)
    for value in values:
        counts[value] += 1
    return dict(counts)


# ------------------------------------------------------------------------ actual, from DuckDB

PLACES = 2  # money
MART_QUERIES = {  # (key width, query)
    "transactions": (3, """select shop_id, date, transaction_id, customer_id, payment_mode, can_size, number_of_cans,
        amount, payment_status, hour, month from transactions"""),
    "payment_summary": (3, """select shop_id, date, payment_mode, transactions, cans, amount, paid_amount, unpaid_amount
        from payment_summary"""),
    "cans_per_day": (3, "select shop_id, date, can_size, transactions, cans, amount from cans_per_day"),
    "daily_revenue": (2, """select shop_id, date, transactions, cans, revenue, paid_revenue, unpaid_revenue, customers,
        walk_in_transactions from daily_revenue"""),
    "monthly_revenue": (2, """select shop_id, month, days_with_sales, transactions, cans, revenue, paid_revenue,
        unpaid_revenue from monthly_revenue"""),
    "total_spent": (2, """select shop_id, customer_id, transactions, cans, amount, paid_amount, unpaid_amount,
        first_purchase_at, last_purchase_at from total_spent"""),
    "cans_per_customer": (3, "select shop_id, customer_id, can_size, transactions, cans, amount from cans_per_customer"),
    "unpaid": (3, "select shop_id, date, transaction_id, customer_id, amount from unpaid"),
    "repeat_defaulters": (2, "select shop_id, customer_id, unpaid_count, amount_owed from repeat_defaulters"),
    "quarantine_summary": (3, "select shop_id, date, reason, rejected_rows from quarantine_summary"),
}


def actual_marts(db: Path) -> dict:
    return read_marts(db, MART_QUERIES, PLACES)


def assert_marts(db: Path, expected: dict) -> dict:
    return assert_marts_equal(db, MART_QUERIES, expected, PLACES)


# -------------------------------------------------------------------------------------- tests


def test_full_then_incremental_builds_match_python(dbt_build):
    lake, db = dbt_build.lake, dbt_build.db
    partitions = dict(LAKE)
    write_transactions(lake, partitions)
    for (shop, day), rows in QUARANTINE.items():
        write_part(lake, "transactions_quarantine", shop, day, rows, QUARANTINE_SCHEMA)

    # 1. Full build of the first two days.
    dbt_build()
    first = assert_marts(db, expected_marts(partitions, QUARANTINE))
    assert first["daily_revenue"][("s1", date(2024, 1, 30))] == (4, 7, 185.0, 150.0, 35.0, 2, 1)
    assert first["repeat_defaulters"] == {("s1", "c2"): (2, 105.0)}
    assert ("s2", date(2024, 1, 31)) not in first["daily_revenue"]  # the empty file has no row

    # 2. A new day arrives for both shops, built with only the date var (every shop, one day);
    #    the month rolls over.
    write_transactions(lake, LATER)
    partitions.update(LATER)
    dbt_build(None, D3)
    added = assert_marts(db, expected_marts(partitions, QUARANTINE))
    assert added["monthly_revenue"][("s1", date(2024, 2, 1))][:2] == (1, 2)
    assert ("s2", "c9") in added["repeat_defaulters"]

    # 3. Re-running a shop-day is idempotent. Another shop-day's file is made unreadable first:
    #    the run must only open its own partition (hive pruning), or it would fail. (Not the
    #    glob's first file, which DuckDB opens to bind the schema.)
    other = lake / "transactions" / "shop_id=s2" / f"date={D1}" / "part.parquet"
    saved = other.read_bytes()
    other.write_bytes(b"not a parquet file")
    try:
        dbt_build("s2", D3)
    finally:
        other.write_bytes(saved)
    assert actual_marts(db) == added

    # 4. A changed file: s1's D2 now has one paid bill only; re-running that day updates the
    #    day-grained marts, the January row of monthly_revenue and s1's customer marts.
    partitions[("s1", D2)] = [sale("A5", D2, "06:55", "c2", "Cash", "20L", 2, "Paid", 2)]
    write_transactions(lake, {("s1", D2): partitions[("s1", D2)]})
    dbt_build("s1", D2)
    changed = assert_marts(db, expected_marts(partitions, QUARANTINE))
    assert changed["daily_revenue"][("s1", date(2024, 1, 31))] == (1, 2, 70.0, 70.0, 0.0, 1, 0)
    assert changed["monthly_revenue"][("s1", date(2024, 1, 1))] == (2, 5, 9, 255.0, 220.0, 35.0)
    assert ("s1", "c2") not in changed["repeat_defaulters"]
    assert changed["total_spent"][("s2", "c1")] == added["total_spent"][("s2", "c1")]

    # 5. A file that becomes empty leaves no rows for its shop-day, and its month is re-summed
    #    (s2's January had only D1, so the row disappears); the quarantine is sparse: ingestion
    #    removes a shop-day's file once nothing is rejected, and its rows leave the mart the same way.
    partitions[("s2", D1)] = []
    write_transactions(lake, {("s2", D1): []})
    quarantine = {**QUARANTINE, ("s2", D1): []}
    (lake / "transactions_quarantine" / "shop_id=s2" / f"date={D1}" / "part.parquet").unlink()
    dbt_build("s2", D1)
    emptied = assert_marts(db, expected_marts(partitions, quarantine))
    assert not any(key[:2] == ("s2", date(2024, 1, 30)) for key in emptied["transactions"])
    assert ("s2", date(2024, 1, 1)) not in emptied["monthly_revenue"]
    assert emptied["quarantine_summary"] == {
        ("s1", date(2024, 1, 30), "missing_fields"): 2, ("s1", date(2024, 1, 30), "bad_can_size"): 1,
    }

    # 6. A full build over the same lake lands on exactly the incremental state.
    dbt_build()
    assert actual_marts(db) == emptied

    # 7. A range, as a single-run backfill builds it: s1's three days all change (across the month
    #    boundary); one build over date..date_to updates the days, both months and the customers.
    for day in (D1, D2, D3):
        partitions[("s1", day)] = [sale(f"R-{day}", day, "09:00", "c7", "UPI", "10L", 1, "Unpaid", 1)]
        write_transactions(lake, {("s1", day): partitions[("s1", day)]})
    dbt_build("s1", D1, day_to=D3)
    ranged = assert_marts(db, expected_marts(partitions, quarantine))
    assert ranged["repeat_defaulters"][("s1", "c7")] == (3, 60.0)
    dbt_build()
    assert actual_marts(db) == ranged


def test_first_build_without_quarantine_and_var_validation(dbt_build):
    """A shop-day build into an empty warehouse, before any row was ever rejected (no quarantine
    file at all); then odd vars are refused (they are inlined into SQL), and so is a
    partition-scoped --full-refresh, which would truncate the tables to one partition."""
    write_transactions(dbt_build.lake, {("s1", D1): LAKE[("s1", D1)]})
    dbt_build("s1", D1)
    expected = expected_marts({("s1", D1): LAKE[("s1", D1)]}, {})
    marts = assert_marts(dbt_build.db, expected)
    assert marts["quarantine_summary"] == {}

    with pytest.raises(pytest.fail.Exception, match="shop_id must match"):
        dbt_build("s1'; drop table transactions; --", D1)
    with pytest.raises(pytest.fail.Exception, match="must be YYYY-MM-DD"):
        dbt_build("s1", "30/01/2024")
    with pytest.raises(pytest.fail.Exception, match="on or after var date"):
        dbt_build("s1", D2, day_to=D1)
    with pytest.raises(pytest.fail.Exception, match="full-refresh"):
        dbt_build("s1", D1, "--full-refresh")
    assert_marts(dbt_build.db, expected)
