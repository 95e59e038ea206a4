"""The built-in demo: a water-can shop with a week of POS data (and a few broken inputs)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

from watershop_dagster.config import CONFIG_FILENAME, WatershopConfig, init_workspace, load_config
from watershop_dagster.fixtures import fixtures_dir
from watershop_dagster.warehouse import connect_marts

DEMO_SHOP = "demo_shop"

BROKEN_EXPORT = """transaction_id,timestamp,customer_id,payment_mode,can_size,number_of_cans,amount,payment_status
{shop}-BAD-1,{day} 10:15:00,C9001,Card,20L,1,35,Paid
{shop}-BAD-2,not-a-time,C9002,UPI,20L,1,35,Paid
{shop}-BAD-3,{day} 11:00:00,C9003,UPI,20L,two,70,Paid
{shop}-BAD-4,{day} 12:00:00,C9004,UPI,20L,1,35
{shop}-OK-1,{day} 12:30:00,C9005,upi,20 l,2,70,paid
"""


DEMO_FOOTAGE_SECONDS = 360.0


def demo_gallery() -> Path | None:
    """The shared fixture faces when they are beside the checkout, else the packages' sample photos."""
    faces = fixtures_dir() / "faces"
    return faces if faces.is_dir() else None


def build_demo(workspace: Path, start: date, end: date, seed: int) -> WatershopConfig:
    """Create (or reuse) the demo workspace; land POS CSVs and counter-camera footage for start..end."""
    from watershop_dagster.pos.generate import write_transaction_csvs, write_visit_transactions
    from watershop_dagster.synthetic.footage import make_demo_footage

    config_file = workspace / CONFIG_FILENAME
    if config_file.exists():
        config = load_config(config_file)
    else:
        config = init_workspace(workspace, shop_id=DEMO_SHOP, timezone="Asia/Kolkata",
                                partitions_start=start - timedelta(days=365))
    write_transaction_csvs(config, start, end, seed=seed)
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    missing = [day for day in days if not (config.footage_root / config.shops[0].cameras[0] / day.isoformat()).exists()]
    if missing:
        truth = make_demo_footage(config, missing, seed=seed, gallery=demo_gallery(), duration_s=DEMO_FOOTAGE_SECONDS,
                                  workers=2)
        shop_id = config.shops[0].id
        for day in missing:  # the filmed customers pay at the counter too
            write_visit_transactions(config, shop_id, day, truth.filter(pl.col("date") == day), seed=seed)
    broken = config.transactions_landing / config.shops[0].id / f"pos_export_{end.isoformat()}.csv"
    broken.write_text(BROKEN_EXPORT.format(shop=config.shops[0].id, day=end.isoformat()))
    return config


def summary(config: WatershopConfig) -> str:
    if not config.marts_db.exists():
        return f"no marts were published (expected {config.marts_db})"
    with connect_marts(config) as db:
        days, revenue, transactions = db.execute(
            "select count(*), sum(revenue), sum(transactions) from daily_revenue"
        ).fetchone()
        defaulters = db.execute("select count(*) from repeat_defaulters").fetchone()[0]
        rejected = db.execute("select coalesce(sum(rejected_rows), 0) from quarantine_summary").fetchone()[0]
        visits = db.execute("select sum(visits) from daily_visits").fetchone()[0]
        customers = db.execute("select count(*) from unique_customers").fetchone()[0]
        linked = db.execute("select count(visit_id), count(*) from transaction_visit_links").fetchone()
    return "\n".join(
        [
            "",
            f"marts (open read-only in a BI tool): {config.marts_db}",
            f"lake (Parquet):                       {config.lake_root}",
            f"Dagster UI:                           DAGSTER_HOME={config.dagster_home} dagster dev -w workspace.yaml",
            f"{days} shop-days, {transactions} transactions, revenue {revenue:,.2f}",
            f"repeat defaulters: {defaulters}; rejected input rows (quarantined): {rejected}",
            f"visits seen by the camera: {visits or 0}; distinct customers: {customers}; "
            f"transactions linked to a visit: {linked[0]} of {linked[1]}",
        ]
    )
