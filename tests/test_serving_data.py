"""Shared test data for the serving, BI and report tests: a real pipeline build, once per session.

POS CSVs are generated (north: 2 days, south: 1 day) and, next to them, the lake datasets the identity
pipeline would write from footage (`visits`, `transaction_visit_links`), derived deterministically from
the sales: a visit per sale under a registry id (`c_...`, not the POS id), a visit paying two bills, a
sale nobody was seen for, customers coming back without buying, a VIP and a staff member.
The daily job then runs for each shop-day without its vision/identity steps (there is no footage to
read; they would overwrite those datasets), so dbt builds the real POS *and* visit marts.

Two workspaces point at copies of the served marts (the served file itself is never written):
`full` (everything) and `pos_only` (visit marts dropped, like a workspace without cameras).
Other test modules import `serving_workspaces`; it caches the build per session.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from watershop_dagster import lake
from watershop_dagster.config import CONFIG_ENV_VAR, CONFIG_FILENAME, WatershopConfig, load_config
from watershop_dagster.serving.marts import VISIT_MARTS

pytestmark = pytest.mark.slow

START, END = date(2025, 3, 1), date(2025, 3, 2)  # north: START..END, south: START only
SHOP_DAYS = (("north", START), ("south", START), ("north", END))
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


def _utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))


def identity_lake_day(sales: pl.DataFrame, shop_id: str, tz: ZoneInfo) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(visits, transaction_visit_links) for one shop-day, as the identity pipeline would write them."""
    from watershop_dagster.identity.linking import TRANSACTION_VISIT_LINKS_SCHEMA
    from watershop_dagster.identity.visits import VISITS_SCHEMA

    visits: list[dict] = []
    links: list[dict] = []
    open_visit: dict[str, dict] = {}  # customer -> their latest visit (a second bill soon after joins it)

    def add_visit(vid, customer, role, entry, exit_, person_key=None):
        visit = {"visit_id": vid, "customer_id": customer, "person_key": person_key, "role": role,
                 "entry_local": entry, "exit_local": exit_, "cameras": "counter" if role != "staff" else "counter,door",
                 "n_tracks": 1, "n_faces": 6 + len(visits) % 5, "n_embeddings": 3,
                 "confidence": 0.55 if customer and customer.startswith("c_w") else 0.92, "ambiguous": False}
        visits.append(visit)
        return visit

    rows = sales.sort("timestamp", "transaction_id").iter_rows(named=True)
    for n, sale in enumerate(rows):
        paid_at = datetime.fromisoformat(sale["timestamp"])
        pos_id = sale["customer_id"] or None
        link = {"transaction_id": sale["transaction_id"], "timestamp_utc": _utc(paid_at, tz), "visit_id": None,
                "customer_id": None, "person_key": None, "role": None, "pos_customer_id": pos_id,
                "link_confidence": 0.0, "n_candidates": 0, "seen_gap_s": None, "reason": "no face near the counter"}
        links.append(link)
        if n % 10 == 9:  # nobody was seen paying this bill
            continue
        customer = f"c_{pos_id.lower()}" if pos_id else f"c_w{sale['transaction_id'][-4:]}{shop_id}"
        previous = open_visit.get(customer)
        if previous and paid_at <= previous["exit_local"] + timedelta(minutes=10):
            visit = previous  # one visit, two bills
            visit["exit_local"] = max(visit["exit_local"], paid_at + timedelta(seconds=40))
        else:
            visit = add_visit(f"v_{sale['transaction_id']}", customer, "customer",
                              paid_at - timedelta(seconds=60 + n % 90), paid_at + timedelta(seconds=30 + n % 120))
            open_visit[customer] = visit
        link.update(visit_id=visit["visit_id"], customer_id=customer, role="customer", reason=None,
                    link_confidence=0.9 - (n % 4) * 0.1, n_candidates=1 + n % 2, seen_gap_s=float(n % 7))
        if pos_id and n % 6 == 0:  # comes back later without buying
            back = paid_at + timedelta(hours=-3 if paid_at.hour >= 12 else 2)
            add_visit(f"v_{sale['transaction_id']}_b", customer, "customer", back, back + timedelta(seconds=75))
    day = datetime.fromisoformat(sales["timestamp"].min()).replace(hour=0, minute=0, second=0)
    add_visit(f"v_vip_{day:%Y%m%d}", "k_vip_mla", "vip", day.replace(hour=12), day.replace(hour=12, minute=4),
              person_key="vip/mla")  # a VIP counts as a customer
    for piece, (a, b) in enumerate(((6, 11), (12, 17))):  # staff: two stays under max_visit_hours
        add_visit(f"v_staff{piece}_{day:%Y%m%d}", None, "staff", day.replace(hour=a), day.replace(hour=b, minute=55),
                  person_key="staff/anita")

    for visit in visits:
        visit["entry_utc"], visit["exit_utc"] = _utc(visit["entry_local"], tz), _utc(visit["exit_local"], tz)
        visit["duration_s"] = (visit["exit_local"] - visit["entry_local"]).total_seconds()
    return (pl.DataFrame(visits).select(list(VISITS_SCHEMA)).cast(dict(VISITS_SCHEMA)),
            pl.DataFrame(links).select(list(TRANSACTION_VISIT_LINKS_SCHEMA)).cast(dict(TRANSACTION_VISIT_LINKS_SCHEMA)))


def write_identity_lake(config: WatershopConfig) -> None:
    for shop_id, day in SHOP_DAYS:
        csv = next((config.transactions_landing / shop_id).glob(f"*{day}*.csv"))
        sales = pl.read_csv(csv, infer_schema=False)
        visits, links = identity_lake_day(sales, shop_id, config.shop(shop_id).tz)
        lake.write_partition(visits, config.lake_root, "visits", shop_id=shop_id, date=day.isoformat())
        lake.write_partition(links, config.lake_root, "transaction_visit_links", shop_id=shop_id, date=day.isoformat())


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
    from assets.jobs import DAILY_JOB
    from assets.partitions import shop_day_key
    from watershop_dagster.orchestration.assemble import build_definitions
    from watershop_dagster.orchestration.instance import workspace_instance
    from watershop_dagster.pos.generate import write_transaction_csvs

    base = tmp_path_factory.mktemp("serving")
    (base / "pipeline").mkdir()
    config_file = base / "pipeline" / CONFIG_FILENAME
    config_file.write_text(f"partitions_start: \"2025-01-01\"\n{SHOPS_YAML}")
    pipeline = load_config(config_file)
    # seed 0 gives north a repeat defaulter within two days
    write_transaction_csvs(pipeline, START, END, seed=0, transactions_per_day=30, shop_ids=["north"])
    write_transaction_csvs(pipeline, START, START, seed=0, transactions_per_day=30, shop_ids=["south"])
    write_identity_lake(pipeline)
    # what runner.run_range does, for these 3 shop-days, with the definitions built once and without the
    # vision/identity steps (no footage here: they would overwrite the identity datasets written above)
    previous = os.environ.get(CONFIG_ENV_VAR)
    os.environ[CONFIG_ENV_VAR] = str(config_file)
    try:
        job = build_definitions(config_file).resolve_job_def(DAILY_JOB)
        graph = job.asset_layer.asset_graph
        keep = {key for key in graph.get_all_asset_keys() if graph.get(key).group_name in ("pos", "marts")}
        job = job.get_subset(asset_selection=keep,
                             asset_check_selection={c for c in graph.asset_check_keys if c.asset_key in keep})
        instance = workspace_instance(pipeline)
        for shop_id, day in SHOP_DAYS:
            result = job.execute_in_process(instance=instance, partition_key=shop_day_key(shop_id, day),
                                            raise_on_error=False)
            assert result.success, f"pipeline run failed for {shop_id} {day}"
            failed = [e.check_name for e in result.get_asset_check_evaluations()
                      if not e.passed and e.severity.value == "ERROR"]
            assert not failed, f"{shop_id} {day}: failed checks {failed}"
    finally:
        if previous is None:
            os.environ.pop(CONFIG_ENV_VAR, None)
        else:
            os.environ[CONFIG_ENV_VAR] = previous

    full = workspace_from(pipeline.marts_db, base / "full", pipeline)
    pos_only = workspace_from(pipeline.marts_db, base / "pos_only", pipeline)
    drop_visit_marts(pos_only.marts_db)
    _BUILT[key] = ServingWorkspaces(pipeline, full, pos_only)
    return _BUILT[key]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> ServingWorkspaces:
    return serving_workspaces(tmp_path_factory)


def test_real_visit_marts_follow_the_contract(workspaces):
    with duckdb.connect(str(workspaces.full.marts_db), read_only=True) as db:
        for table, columns in VISIT_CONTRACT.items():
            have = {row[0] for row in db.execute(f"describe {table}").fetchall()}
            assert set(columns) <= have, (table, set(columns) - have)
        visits, linked, vip = db.execute(
            "select count(*), count(transaction_id), count(*) filter (where role = 'vip') "
            "from visit_log where role <> 'staff'").fetchone()
        assert visits > linked > 0 and vip == len(SHOP_DAYS)
        assert db.execute("select sum(visits) from daily_visits").fetchone()[0] == visits  # staff excluded
        assert db.execute("select count(*) from daily_visits "
                          "where unique_customers <> new_customers + returning_customers").fetchone()[0] == 0
        assert db.execute("select sum(returning_customers) from daily_visits").fetchone()[0] > 0
        assert db.execute("select count(*) from repeat_defaulters").fetchone()[0] > 0
        kinds = dict(db.execute("select customer_id_kind, count(*) from total_spent group by 1").fetchall())
        assert kinds.get("registry", 0) > 0 and kinds.get("pos", 0) > 0
    with duckdb.connect(str(workspaces.pos_only.marts_db), read_only=True) as db:
        names = {r[0] for r in db.execute("select table_name from information_schema.tables").fetchall()}
        assert not names & set(VISIT_MARTS)
        assert "daily_revenue" in names
