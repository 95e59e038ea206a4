"""Hostile POS rows over a date range, from CSV through ingest and dbt to the published marts.

Issue #11: one row with amount 1e300 used to pass ingest and then fail dbt's cast to decimal(18, 2),
so every day of the range failed and nothing was published. The control run below shows that a
lake holding such a row still breaks the build; the real run shows ingest now quarantines it (and
the other hostile rows) so the whole range builds and publishes with exactly the valid sales.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.conftest import TRANSACTION_SCHEMA
from watershop_dagster import lake
from watershop_dagster.config import init_workspace
from watershop_dagster.pos.ingest import ingest_partitions
from watershop_dagster.warehouse import publish_marts

pytestmark = pytest.mark.slow

HEADER = "transaction_id,timestamp,customer_id,payment_mode,can_size,number_of_cans,amount,payment_status\n"
DAYS = [date(2024, 1, 2) + timedelta(days=offset) for offset in range(3)]
HOSTILE = [  # (transaction_id suffix, customer, cans, amount) - each must be quarantined
    ("huge", "C1", "2", "1e300"),
    ("over", "C1", "2", "1e16"),
    ("inf", "C1", "2", "inf"),
    ("nan", "C1", "2", "NaN"),
    ("typo", "C1", "2", "70000"),  # 20L costs 35: an extra three digits
    ("cans", "C1", "1e12", "70"),
    ("nul", "C\x001", "2", "70"),
    ("bidi", "C1\u202e", "2", "70"),
]


def hostile_csv(day: date) -> str:
    good = [
        f"G{day:%d}a,{day} 09:00:00,C1,UPI,20L,2,70,Paid\n",
        f"G{day:%d}b,{day} 10:00:00,,Cash,10L,1,20,Unpaid\n",
        f"G{day:%d}c,{day} 11:00:00,C2,Coin,20L,1,-0,Paid\n",  # a free can: negative zero is zero
    ]
    bad = [f"H{day:%d}{tag},{day} 12:00:00,{customer},UPI,20L,{cans},{amount},Paid\n"
           for tag, customer, cans, amount in HOSTILE]
    return HEADER + "".join(good + bad)


def test_one_absurd_row_no_longer_stops_the_range(dbt_build, tmp_path: Path, monkeypatch):  # noqa: F811
    config = init_workspace(tmp_path, shop_id="shop1", timezone="Asia/Kolkata")
    assert config.lake_root == dbt_build.lake
    monkeypatch.setenv("WATERSHOP_BUILD_DB", str(config.build_db))
    config.build_db.parent.mkdir(parents=True, exist_ok=True)

    # Control: the lake as the old ingest left it (the 1e300 row landed) fails dbt for the whole range.
    def landed_as_before(day: date) -> dict:
        local = datetime.combine(day, time(12))
        return {
            "transaction_id": "X", "timestamp_local": local,
            "timestamp_utc": (local - timedelta(hours=5, minutes=30)).replace(tzinfo=UTC),
            "customer_id": "C1", "payment_mode": "UPI", "can_size": "20L", "number_of_cans": 2, "amount": 1e300,
            "payment_status": "Paid", "source_file": f"pos_{day}.csv", "source_line": 2,
        }

    for day in DAYS:
        lake.write_partition(pl.DataFrame([landed_as_before(day)], schema=TRANSACTION_SCHEMA), config.lake_root,
                             "transactions",
                             shop_id="shop1", date=day.isoformat())
    with pytest.raises(pytest.fail.Exception, match="(?i)overflow|out of range|decimal"):
        dbt_build("shop1", DAYS[0].isoformat(), day_to=DAYS[-1].isoformat())

    # The real path: CSV -> ingest -> dbt over the range -> publish.
    folder = config.transactions_landing / "shop1"
    for day in DAYS:
        (folder / f"pos_{day}.csv").write_text(hostile_csv(day))
    results = ingest_partitions(config, "shop1", DAYS)
    for day in DAYS:
        assert results[day].valid_count == 3, results[day].valid
        assert results[day].rejected_count == len(HOSTILE), results[day].rejected
        assert results[day].rejected["reason"].str.len_chars().min() > 0

    dbt_build("shop1", DAYS[0].isoformat(), day_to=DAYS[-1].isoformat())
    served = publish_marts(config)
    with duckdb.connect(str(served), read_only=True) as con:
        daily = con.execute(
            "select date, transactions, revenue, paid_revenue from daily_revenue where shop_id = 'shop1' order by date"
        ).fetchall()
        rejected = con.execute(
            "select date, sum(rejected_rows) from quarantine_summary where shop_id = 'shop1' group by date order by date"
        ).fetchall()
        reasons = [r for (r,) in con.execute("select distinct reason from quarantine_summary").fetchall()]
    assert daily == [(day, 3, Decimal("90.00"), Decimal("70.00")) for day in DAYS]
    assert rejected == [(day, len(HOSTILE)) for day in DAYS]
    assert not any(ch in reason for reason in reasons for ch in "\x00\u202e")
