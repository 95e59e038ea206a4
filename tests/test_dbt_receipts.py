"""The sales marts from a hand-made lake, value by value: lines zoned by the category -> zone row valid
when they were sold (dairy moves from Z1 to Z2 overnight), store-day averages, zone sales per hour."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from tests.conftest import assert_marts
from watershop_dagster import catalog, lake

SHOP, DAY1, DAY2 = "super", date(2026, 3, 2), date(2026, 3, 3)
# receipt, time, customer, product, category, quantity, unit price, discount, line total
LINES = {
    DAY1: [("R1", "09:15", "C1", "P1", "dairy", 2, 1.50, 0.0, 3.00),
           ("R1", "09:15", "C1", "P2", "bakery", 1, 2.25, 0.0, 2.25),
           ("R2", "18:40", None, "P3", "produce", -1, 0.85, 0.0, -0.85)],  # a refund; produce is in no zone
    DAY2: [("R3", "10:05", None, "P1", "dairy", 3, 1.50, 0.0, 4.50),
           ("R3", "10:05", None, "P2", "bakery", 2, 2.25, 0.50, 4.00),
           ("R4", "19:30", None, "P1", "dairy", 1, 1.50, 0.0, 1.50)],
}
ZONES = [("dairy", "Z1", None, DAY2), ("dairy", "Z2", DAY2, None), ("bakery", "Z2", None, None)]


def _write_lake(root, lines_per_day=LINES) -> None:
    for day, lines in lines_per_day.items():
        rows = [{"receipt_id": r, "timestamp": datetime.fromisoformat(f"{day}T{t}"), "till": "T1", "customer_id": c,
                 "payment_mode": "Card", "product_id": p, "product_name": p, "category": cat, "quantity": float(q),
                 "unit_price": u, "discount": d, "line_total": n, "source_file": f"super/export_{day}.csv",
                 "source_line": i + 2} for i, (r, t, c, p, cat, q, u, d, n) in enumerate(lines)]
        lake.write_dataset(pl.DataFrame(rows), root, catalog.RECEIPTS, shop_id=SHOP, date=day)
    zones = pl.DataFrame(ZONES, schema=dict(catalog.CATEGORY_ZONES.schema), orient="row")
    lake.write_dataset(zones, root, catalog.CATEGORY_ZONES, shop_id=SHOP)


QUERIES = {
    "receipt_lines": (2, "select date, source_line, zone from receipt_lines"),
    "fct_store_day": (1, "select date, receipts, lines, units, sales, average_transaction_value, "
                         "units_per_transaction, loyalty_customers from fct_store_day"),
    "zone_sales_hourly": (3, "select date, hour, zone, receipts, lines, units, sales from zone_sales_hourly"),
}
EXPECTED = {
    "receipt_lines": {(DAY1, 2): "Z1", (DAY1, 3): "Z2", (DAY1, 4): None,
                      (DAY2, 2): "Z2", (DAY2, 3): "Z2", (DAY2, 4): "Z2"},  # dairy moved to Z2 on DAY2
    "fct_store_day": {(DAY1,): (2, 3, 2.0, 4.40, 2.20, 1.0, 1), (DAY2,): (2, 3, 6.0, 10.00, 5.00, 3.0, 0)},
    "zone_sales_hourly": {(DAY1, 9, "Z1"): (1, 1, 2.0, 3.00), (DAY1, 9, "Z2"): (1, 1, 1.0, 2.25),
                          (DAY2, 10, "Z2"): (1, 2, 5.0, 8.50), (DAY2, 19, "Z2"): (1, 1, 1.0, 1.50)},
}


# cautious: not the zone marts' tests that also read a sales mart (their zone models are not built here)
SALES_MODELS = ("--select", "+receipt_lines +fct_store_day +zone_sales_hourly", "--indirect-selection", "cautious")


def test_the_sales_marts_hold_exact_values_and_a_scoped_rebuild_keeps_them(dbt_build):
    _write_lake(dbt_build.lake)
    dbt_build(None, None, *SALES_MODELS)
    assert_marts(dbt_build.db, QUERIES, EXPECTED, places=4)
    # a scoped rebuild of one shop-day (what a daily run does) changes nothing
    dbt_build(SHOP, DAY2.isoformat(), *SALES_MODELS)
    assert_marts(dbt_build.db, QUERIES, EXPECTED, places=4)


def test_a_null_in_a_not_null_column_fails_the_models_not_null_test_naming_the_column(tmp_path):
    """A model's not-null columns are checked by one test (macros/test_not_null_columns.sql); its
    failure, as the pipeline's dbt runner reports it, names each column that held nulls."""
    from watershop_dagster.config import CONFIG_FILENAME, load_config
    from watershop_dagster.dbt_runner import project_runner

    (tmp_path / CONFIG_FILENAME).write_text(f'partitions_start: "2026-03-01"\nshops:\n  - id: {SHOP}\n    timezone: UTC\n')
    config = load_config(tmp_path / CONFIG_FILENAME)
    nameless = ("R9", "11:00", None, "P9", None, 1, 1.00, 0.0, 1.00)  # a line without a category
    _write_lake(config.lake_root, {DAY1: [*LINES[DAY1], nameless], DAY2: LINES[DAY2]})
    result = project_runner().build(config, None, extra_args=["--select", "stg_receipts"])
    assert not result.success
    assert [f for f in result.failures if f.startswith("stg_receipts_not_null: fail")] == [
        "stg_receipts_not_null: fail Got 1 result, configured to fail if != 0 (nulls in category (1 row))"]
    assert list(result.failure_details.values()) == ["nulls in category (1 row)"]


def test_describe_null_columns_names_each_column_and_its_rows():
    from watershop_dagster.dbt_runner import describe_null_columns

    assert describe_null_columns([("amount", 1), ("date", 3)]) == "nulls in amount (1 row), date (3 rows)"
