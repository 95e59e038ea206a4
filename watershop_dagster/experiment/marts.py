"""The experiment marts: every declared experiment's stored assignment, and its result per shop
computed by the analysis from the zone sales the marts hold (dbt Python models call these).

An experiment that cannot be analysed yet (no assignment, no sales in its zones, a metric the marts
do not have) gets a result row that says why instead of failing the build.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from watershop_dagster.experiment.design import (
    ASSIGNMENT_SCHEMA,
    EXPERIMENTS_DIR,
    SPEC_FILE,
    ExperimentError,
    ExperimentSpec,
    load_assignment,
    load_spec,
)

ASSIGNMENT_MART_SCHEMA: dict[str, pl.DataType] = {"experiment": pl.Utf8(), **ASSIGNMENT_SCHEMA}
RESULTS_MART_SCHEMA: dict[str, pl.DataType] = {
    "experiment": pl.Utf8(),
    "shop_id": pl.Utf8(),
    "metric": pl.Utf8(),
    "status": pl.Utf8(),  # "analysed", or why not
    "effect": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "p_value": pl.Float64(),
    "mde": pl.Float64(),
    "n_cells": pl.Int64(),
    "n_zones": pl.Int64(),
    "n_days": pl.Int64(),
    "cluster_ci_low": pl.Float64(),
    "cluster_ci_high": pl.Float64(),
    "guardrail": pl.Utf8(),
}
ANALYSED = "analysed"
ANALYSIS_PERMUTATIONS = 2000


def declared_experiments(workspace: Path) -> list[ExperimentSpec]:
    """Every experiment declared in the workspace, by name."""
    root = Path(workspace) / EXPERIMENTS_DIR
    names = sorted(path.parent.name for path in root.glob(f"*/{SPEC_FILE}")) if root.is_dir() else []
    return [load_spec(workspace, name) for name in names]


def assignment_mart(workspace: Path) -> pl.DataFrame:
    """(experiment, zone, date, arm, period, washout) of every experiment with a stored assignment."""
    frames = []
    for spec in declared_experiments(workspace):
        try:
            frames.append(load_assignment(workspace, spec.name).select(pl.lit(spec.name).alias("experiment"),
                                                                        pl.all()))
        except ExperimentError:
            continue
    return pl.concat([pl.DataFrame(schema=ASSIGNMENT_MART_SCHEMA), *frames]).cast(ASSIGNMENT_MART_SCHEMA)


def _result(spec: ExperimentSpec, shop_id: str | None, zone_days: pl.DataFrame, workspace: Path,
            permutations: int) -> dict:
    # imported here: the analysis pulls in scipy (seconds), and every marts build imports this module
    # while most workspaces declare no experiment
    from watershop_dagster.experiment.analysis import analyse
    from watershop_dagster.experiment.data import zone_day_metrics

    row = {"experiment": spec.name, "shop_id": shop_id, "metric": spec.metric}
    if spec.metric != "zone_sales":
        return {**row, "status": f"metric {spec.metric} needs the behaviour marts (footfall): not analysed here"}
    try:
        assignment = load_assignment(workspace, spec.name)
        metrics = zone_day_metrics(zone_days.filter(pl.col("zone").is_in(spec.zones)))
        if metrics.is_empty():
            raise ExperimentError(f"no sales in zones {spec.zones}")
        result = analyse(spec, metrics, assignment, permutations=permutations)
    except (ExperimentError, ValueError, ZeroDivisionError) as exc:
        return {**row, "status": f"not analysed: {exc}"}
    return {**row, "status": ANALYSED, "effect": result.effect, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "p_value": result.p_value, "mde": result.mde, "n_cells": result.n_cells, "n_zones": result.n_zones,
            "n_days": result.n_days, "cluster_ci_low": result.cluster.get("ci_low"),
            "cluster_ci_high": result.cluster.get("ci_high"), "guardrail": result.guardrail.get("verdict")}


def results_mart(workspace: Path, zone_sales: pl.DataFrame, permutations: int = ANALYSIS_PERMUTATIONS) -> pl.DataFrame:
    """One row per experiment and shop with sales (zone_sales: shop_id, zone, date, sales per zone-day)."""
    rows = []
    for spec in declared_experiments(workspace):
        shops = sorted(zone_sales.filter(pl.col("zone").is_in(spec.zones))["shop_id"].unique()) or [None]
        for shop_id in shops:
            zone_days = zone_sales.filter(pl.col("shop_id") == shop_id).select(
                "zone", "date", pl.col("sales").cast(pl.Float64).alias("metric"))
            rows.append(_result(spec, shop_id, zone_days, workspace, permutations))
    return pl.DataFrame(rows, schema=RESULTS_MART_SCHEMA) if rows else pl.DataFrame(schema=RESULTS_MART_SCHEMA)
