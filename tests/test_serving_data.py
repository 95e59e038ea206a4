"""Shared test data for the serving, BI and report tests.

One real POS pipeline run (north: 3 days, south: 1 day) is built once per test session; then two
workspaces point at copies of its served marts file (the served file itself is never written):

- `full`: the copy gets the visit marts, derived deterministically from the transactions following the
  visit-mart contract (one visit per sale, some visits without a sale, a staff member all day);
- `pos_only`: the copy has no visit marts (dropped if the pipeline already builds them).

Other test modules import `serving_workspaces`; it caches the build per session.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from watershop_dagster.config import CONFIG_FILENAME, WatershopConfig, load_config
from watershop_dagster.serving.marts import VISIT_MARTS

pytestmark = pytest.mark.slow

START, END = date(2025, 3, 1), date(2025, 3, 3)
SHOPS_YAML = """\
shops:
  - id: north
    timezone: Asia/Kolkata
    prices: {10L: 20, 20L: 35}
  - id: south
    timezone: Europe/London
    prices: {10L: 25, 20L: 40}
"""

# The visit-mart contract: table -> columns the serving layer may rely on.
VISIT_CONTRACT = {
    "visit_log": ["visit_id", "shop_id", "date", "customer_id", "role", "entry_time", "exit_time", "duration_s",
                  "cameras", "n_faces", "confidence", "transaction_id", "amount"],
    "daily_visits": ["shop_id", "date", "visits", "unique_customers", "new_customers", "returning_customers",
                     "avg_duration_s"],
    "monthly_visits": ["shop_id", "month", "visits", "unique_customers", "new_customers", "returning_customers"],
    "quarterly_visits": ["shop_id", "quarter", "visits", "unique_customers", "new_customers", "returning_customers"],
    "unique_customers": ["shop_id", "customer_id", "first_seen", "last_seen", "visits", "days_visited"],
    "customer_visit_counts": ["shop_id", "customer_id", "visits", "first_visit", "last_visit", "avg_duration_s"],
    "repeat_visits": ["shop_id", "customer_id", "visits", "first_visit", "last_visit", "avg_duration_s"],
    "new_customers": ["shop_id", "date", "customer_id"],
    "returning_customers": ["shop_id", "date", "customer_id"],
    "traffic_per_hour": ["shop_id", "date", "hour", "visits", "unique_customers"],
    "first_last_customer": ["shop_id", "date", "first_entry", "last_exit", "first_customer_id", "last_customer_id"],
    "peak_hours": ["shop_id", "hour", "avg_visits_per_day", "is_peak", "is_idle", "suggested_staff"],
    "transaction_visit_links": ["shop_id", "date", "transaction_id", "visit_id", "customer_id", "pos_customer_id",
                                "link_confidence"],
    "visits_without_payment": ["shop_id", "date", "visit_id", "customer_id", "entry_time", "exit_time", "duration_s"],
}

# Deterministic visit marts derived from the POS transactions already in the file. Staff visits are in
# visit_log but excluded from every count, as the real marts do.
VISIT_MARTS_SQL = """
create or replace table visit_log as
with tx as (
    select *, row_number() over (partition by shop_id order by timestamp_local, transaction_id) as n
    from transactions
),
sale_visits as (
    select shop_id || '-' || transaction_id as visit_id, shop_id, date,
           coalesce(customer_id, 'F-' || transaction_id) as customer_id, 'customer' as role,
           timestamp_local - to_seconds(60 + n % 90) as entry_time,
           timestamp_local + to_seconds(30 + n % 120) as exit_time,
           transaction_id, amount
    from tx
),
browse_visits as (  -- every 6th known customer comes back later the same day without buying
    select shop_id || '-' || transaction_id || '-b' as visit_id, shop_id, date, customer_id, 'customer' as role,
           timestamp_local + to_hours(case when hour >= 12 then -3 else 2 end) as entry_time,
           timestamp_local + to_hours(case when hour >= 12 then -3 else 2 end) + to_seconds(45 + n % 30) as exit_time,
           null::varchar as transaction_id, null::decimal(18, 2) as amount
    from tx
    where customer_id is not null and n % 6 = 0
),
staff_visits as (
    select shop_id || '-' || date || '-staff' as visit_id, shop_id, date, 'S-anita' as customer_id, 'staff' as role,
           date + time '05:50:00' as entry_time, date + time '21:10:00' as exit_time,
           null::varchar as transaction_id, null::decimal(18, 2) as amount
    from (select distinct shop_id, date from tx)
),
all_visits as (
    select * from sale_visits union all select * from browse_visits union all select * from staff_visits
)
select visit_id, shop_id, date, customer_id, role, entry_time, exit_time,
       date_diff('second', entry_time, exit_time)::double as duration_s,
       ['counter'] as cameras, 3 + length(visit_id) % 5 as n_faces,
       case when customer_id like 'F-%' then 0.55 else 0.92 end as confidence,
       transaction_id, amount
from all_visits;

create or replace temp view _customer_visits as select * from visit_log where role <> 'staff';
create or replace temp view _first_day as
    select shop_id, customer_id, min(date) as first_date from _customer_visits group by all;

create or replace table new_customers as
    select distinct v.shop_id, v.date, v.customer_id
    from _customer_visits v join _first_day f using (shop_id, customer_id) where v.date = f.first_date;
create or replace table returning_customers as
    select distinct v.shop_id, v.date, v.customer_id
    from _customer_visits v join _first_day f using (shop_id, customer_id) where v.date > f.first_date;

create or replace table daily_visits as
    select shop_id, date, count(*) as visits, count(distinct customer_id) as unique_customers,
           count(distinct customer_id) filter (where date = first_date) as new_customers,
           count(distinct customer_id) filter (where date > first_date) as returning_customers,
           avg(duration_s) as avg_duration_s
    from _customer_visits join _first_day using (shop_id, customer_id) group by all;

create or replace table monthly_visits as
    select shop_id, date_trunc('month', date)::date as month, count(*) as visits,
           count(distinct customer_id) as unique_customers,
           count(distinct customer_id) filter (where date_trunc('month', first_date) = date_trunc('month', date)) as new_customers,
           count(distinct customer_id) filter (where date_trunc('month', first_date) < date_trunc('month', date)) as returning_customers
    from _customer_visits join _first_day using (shop_id, customer_id) group by all;

create or replace table quarterly_visits as
    select shop_id, date_trunc('quarter', date)::date as quarter, count(*) as visits,
           count(distinct customer_id) as unique_customers,
           count(distinct customer_id) filter (where date_trunc('quarter', first_date) = date_trunc('quarter', date)) as new_customers,
           count(distinct customer_id) filter (where date_trunc('quarter', first_date) < date_trunc('quarter', date)) as returning_customers
    from _customer_visits join _first_day using (shop_id, customer_id) group by all;

create or replace table unique_customers as
    select shop_id, customer_id, min(entry_time) as first_seen, max(exit_time) as last_seen, count(*) as visits,
           count(distinct date) as days_visited
    from _customer_visits group by all;

create or replace table customer_visit_counts as
    select shop_id, customer_id, count(*) as visits, min(entry_time) as first_visit, max(entry_time) as last_visit,
           avg(duration_s) as avg_duration_s
    from _customer_visits group by all;
create or replace table repeat_visits as select * from customer_visit_counts where visits >= 2;

create or replace table traffic_per_hour as
    select shop_id, date, hour(entry_time) as hour, count(*) as visits, count(distinct customer_id) as unique_customers
    from _customer_visits group by all;

create or replace table first_last_customer as
    select shop_id, date, min(entry_time) as first_entry, max(exit_time) as last_exit,
           arg_min(customer_id, entry_time) as first_customer_id, arg_max(customer_id, exit_time) as last_customer_id
    from _customer_visits group by all;

create or replace table peak_hours as
    with days as (select shop_id, count(distinct date) as n from _customer_visits group by all),
    hourly as (
        select t.shop_id, t.hour, sum(t.visits) / any_value(d.n) as avg_visits_per_day
        from traffic_per_hour t join days d using (shop_id) group by all
    )
    select shop_id, hour, avg_visits_per_day,
           avg_visits_per_day >= 0.7 * max(avg_visits_per_day) over (partition by shop_id) as is_peak,
           avg_visits_per_day <= 0.25 * max(avg_visits_per_day) over (partition by shop_id) as is_idle,
           1 + floor(avg_visits_per_day / 4)::int as suggested_staff
    from hourly;

create or replace table transaction_visit_links as
    select v.shop_id, v.date, v.transaction_id, v.visit_id, v.customer_id, t.customer_id as pos_customer_id,
           0.9 as link_confidence
    from visit_log v join transactions t using (shop_id, date, transaction_id);

create or replace table visits_without_payment as
    select shop_id, date, visit_id, customer_id, entry_time, exit_time, duration_s
    from _customer_visits where transaction_id is null;
"""


def add_visit_marts(db_path: Path) -> None:
    with duckdb.connect(str(db_path)) as db:
        db.execute(VISIT_MARTS_SQL)
        db.execute("CHECKPOINT")


def drop_visit_marts(db_path: Path) -> None:
    with duckdb.connect(str(db_path)) as db:
        kinds = dict(db.execute("select table_name, table_type from information_schema.tables "
                                "where table_schema = 'main'").fetchall())
        for name in VISIT_MARTS:
            if name in kinds:
                db.execute(f"drop {'view' if kinds[name] == 'VIEW' else 'table'} {name}")
        db.execute("CHECKPOINT")


def workspace_from(marts_file: Path, root: Path, source: WatershopConfig) -> WatershopConfig:
    """A workspace at `root` sharing `source`'s lake and landing, with a copy of `marts_file` as its marts."""
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(marts_file, root / "warehouse" / "marts.duckdb")
    (root / CONFIG_FILENAME).write_text(
        f"paths:\n  landing: {source.landing_dir}\n  lake: {source.lake_root}\n  warehouse: warehouse\n"
        f"partitions_start: \"2025-01-01\"\n{SHOPS_YAML}"
    )
    return load_config(root / CONFIG_FILENAME)


@dataclass(frozen=True)
class ServingWorkspaces:
    pipeline: WatershopConfig
    full: WatershopConfig
    pos_only: WatershopConfig

    @staticmethod
    def config_file(config: WatershopConfig) -> Path:
        return config.workspace_dir / CONFIG_FILENAME


_BUILT: dict[Path, ServingWorkspaces] = {}


def serving_workspaces(tmp_path_factory: pytest.TempPathFactory) -> ServingWorkspaces:
    """Build (once per session) the pipeline workspace and its `full` and `pos_only` copies."""
    key = tmp_path_factory.getbasetemp()
    if key in _BUILT:
        return _BUILT[key]
    from watershop_dagster.pos.generate import write_transaction_csvs
    from watershop_dagster.runner import run_range

    base = tmp_path_factory.mktemp("serving")
    (base / "pipeline").mkdir()
    (base / "pipeline" / CONFIG_FILENAME).write_text(f"partitions_start: \"2025-01-01\"\n{SHOPS_YAML}")
    pipeline = load_config(base / "pipeline" / CONFIG_FILENAME)
    write_transaction_csvs(pipeline, START, END, seed=5, transactions_per_day=30, shop_ids=["north"])
    write_transaction_csvs(pipeline, START, START, seed=5, transactions_per_day=30, shop_ids=["south"])
    runs = run_range(START, END, base / "pipeline" / CONFIG_FILENAME, ["north"])
    runs += run_range(START, START, base / "pipeline" / CONFIG_FILENAME, ["south"])
    assert [r for r in runs if not r.success] == [], runs

    full = workspace_from(pipeline.marts_db, base / "full", pipeline)
    add_visit_marts(full.marts_db)
    pos_only = workspace_from(pipeline.marts_db, base / "pos_only", pipeline)
    drop_visit_marts(pos_only.marts_db)
    _BUILT[key] = ServingWorkspaces(pipeline, full, pos_only)
    return _BUILT[key]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> ServingWorkspaces:
    return serving_workspaces(tmp_path_factory)


def test_visit_fixture_follows_the_visit_mart_contract(workspaces):
    with duckdb.connect(str(workspaces.full.marts_db), read_only=True) as db:
        for table, columns in VISIT_CONTRACT.items():
            have = {row[0] for row in db.execute(f"describe {table}").fetchall()}
            assert set(columns) <= have, (table, set(columns) - have)
        visits, linked = db.execute("select count(*), count(transaction_id) from visit_log where role <> 'staff'").fetchone()
        assert visits > linked > 0
        assert db.execute("select sum(visits) from daily_visits").fetchone()[0] == visits
        # every visitor of a day is either new or returning that day
        assert db.execute(
            "select count(*) from daily_visits where unique_customers <> new_customers + returning_customers"
        ).fetchone()[0] == 0
    with duckdb.connect(str(workspaces.pos_only.marts_db), read_only=True) as db:
        names = {r[0] for r in db.execute("select table_name from information_schema.tables").fetchall()}
        assert not names & set(VISIT_MARTS)
        assert "daily_revenue" in names
