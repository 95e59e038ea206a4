"""The experiment marts: a declared, assigned experiment on a generated store with a known +10 % lift is
analysed inside the dbt build from zone_sales_hourly, with the same answer as `watershop experiment
analyse` computes from the lake's receipts."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from watershop_dagster import catalog, lake
from watershop_dagster.experiment.analysis import analyse
from watershop_dagster.experiment.data import zone_sales_from_receipts
from watershop_dagster.experiment.design import ExperimentSpec, assign, load_assignment, save_spec
from watershop_dagster.receipts.generate import (
    DEFAULT_ZONE_OF_CATEGORY,
    ZONES,
    InjectedEffect,
    StoreProfile,
    generate_receipts,
)
from watershop_dagster.receipts.schema import read_receipts
from watershop_dagster.receipts.zones import ZoneMap

SPEC = ExperimentSpec(name="endcaps", zones=list(ZONES), pre_start=date(2026, 1, 5), start=date(2026, 2, 2),
                      end=date(2026, 3, 1), seed=3)
DECLARED_ON = date(2026, 1, 1)


def _store(lake_root, workspace) -> None:
    save_spec(workspace, SPEC, today=DECLARED_ON)
    schedule = assign(workspace, SPEC.name, today=DECLARED_ON)
    lines = generate_receipts(SPEC.pre_start, SPEC.end, seed=5, profile=StoreProfile(receipts_per_day=150),
                              effect=InjectedEffect.from_assignment(schedule, 0.10)).frame()
    lines = lines.with_columns(pl.lit("generated.csv").alias("source_file"),
                               pl.int_range(pl.len(), dtype=pl.Int32).alias("source_line"))
    day = SPEC.pre_start
    while day <= SPEC.end:
        part = lines.filter(pl.col("timestamp").dt.date() == day)
        lake.write_dataset(part, lake_root, catalog.RECEIPTS, shop_id="super", date=day)
        day += timedelta(days=1)
    zones = ZoneMap.constant(DEFAULT_ZONE_OF_CATEGORY)
    lake.write_dataset(zones.table, lake_root, catalog.CATEGORY_ZONES, shop_id="super")


def test_experiment_results_are_the_analysis_of_the_marts_zone_sales(dbt_build, tmp_path):
    workspace = tmp_path / "workspace"
    _store(dbt_build.lake, workspace)
    dbt_build(None, None, "--select", "+fct_store_day +receipt_lines +experiment_results", "--indirect-selection", "cautious", "--vars",
              json.dumps({"watershop_workspace": str(workspace)}))
    with duckdb.connect(str(dbt_build.db)) as db:
        results = db.sql("select * from experiment_results").pl()
        assigned = db.execute("select arm, count(*) from experiment_assignment group by arm order by arm").fetchall()
    assert assigned == [("control", 8 * 28 // 2), ("treatment", 8 * 28 // 2)]
    (row,) = results.to_dicts()
    assert row["experiment"] == "endcaps" and row["shop_id"] == "super" and row["status"] == "analysed"
    # the CLI's path: zone sales straight from the lake's receipts, the same analysis
    metrics = zone_sales_from_receipts(read_receipts(dbt_build.lake, "super"), ZoneMap.constant(DEFAULT_ZONE_OF_CATEGORY))
    expected = analyse(SPEC, metrics, load_assignment(workspace, SPEC.name))
    assert row["effect"] == pytest.approx(expected.effect, rel=1e-6)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high), rel=1e-6)
    assert row["p_value"] == pytest.approx(expected.p_value) and row["n_cells"] == 8 * 28
    assert row["ci_low"] < 0.10 < row["ci_high"]  # the injected lift is inside the CI


def test_without_a_workspace_the_experiment_marts_are_empty(dbt_build):
    dbt_build(None, None, "--select", "experiment_assignment experiment_results")
    with duckdb.connect(str(dbt_build.db)) as db:
        assert db.execute("select count(*) from experiment_results").fetchone() == (0,)
        assert db.execute("select count(*) from experiment_assignment").fetchone() == (0,)
