from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from click.testing import CliRunner

from watershop_dagster.cli import main
from watershop_dagster.config import init_workspace
from watershop_dagster.experiment.analysis import (
    Panel,
    analyse,
    build_panel,
    cluster_robust,
    fit,
    permutation_estimates,
    ri_pvalues,
)
from watershop_dagster.experiment.data import read_metrics_file
from watershop_dagster.experiment.design import (
    ExperimentError,
    ExperimentSpec,
    assign,
    draw_arms,
    load_assignment,
    save_spec,
    schedule,
)
from watershop_dagster.receipts.generate import (
    DEFAULT_ZONE_OF_CATEGORY,
    ZONES,
    InjectedEffect,
    StoreProfile,
    generate_receipts,
    write_receipt_csvs,
)
from watershop_dagster.receipts.schema import validate_receipts_csv, write_receipts_partitions
from watershop_dagster.receipts.zones import ZONE_MAP_FILE, ZoneMap

# Seeds here are < 1000; bench/bench_experiment.py uses seeds from 10_000 up.
SPEC = ExperimentSpec(name="shelves", zones=list(ZONES), unit="zone-day", pre_start=date(2026, 1, 5),
                      start=date(2026, 2, 2), end=date(2026, 3, 29), seed=4)
AFTER_START = date(2026, 2, 10)
BEFORE_START = date(2026, 1, 20)


def test_schedule_is_seeded_and_balanced_per_zone_and_per_period():
    drawn = schedule(SPEC)
    assert drawn.equals(schedule(SPEC))
    assert not drawn.equals(schedule(SPEC.model_copy(update={"seed": 5})))
    treated = drawn.with_columns((pl.col("arm") == "treatment").alias("t"))
    assert set(treated.group_by("zone").agg(pl.col("t").sum())["t"]) == {28}  # half of 56 days per zone
    assert set(treated.group_by("date").agg(pl.col("t").sum())["t"]) == {4}  # half of 8 zones per day
    # every zone switches within each pair of periods
    per_pair = treated.with_columns((pl.col("period") // 2).alias("pair")).group_by("zone", "pair").agg(pl.col("t").sum())
    assert set(per_pair["t"]) == {1}


def test_odd_zone_counts_stay_balanced_within_one():
    arms = draw_arms(5, 8, np.random.default_rng(1), draws=200)
    assert set(arms.sum(axis=2).ravel()) == {4}  # every zone: 4 of 8 periods
    assert set(arms.sum(axis=1).ravel()) <= {2, 3}


def test_washout_days_are_flagged_at_the_start_of_every_period_and_cannot_cover_a_period():
    weekly = SPEC.model_copy(update={"unit": "zone-week", "washout_days": 2})
    drawn = schedule(ExperimentSpec.model_validate(weekly.model_dump()))
    washout_days = sorted(set(drawn.filter("washout")["date"]))
    assert washout_days[:4] == [date(2026, 2, 2), date(2026, 2, 3), date(2026, 2, 9), date(2026, 2, 10)]
    assert len(washout_days) == 16
    assert drawn.group_by("zone", "period").agg(pl.col("arm").n_unique())["arm"].max() == 1  # weekly arms
    with pytest.raises(ValueError, match="washout_days 1 would drop every day"):
        ExperimentSpec.model_validate({**SPEC.model_dump(), "washout_days": 1})


def test_assignment_is_stored_and_never_changes_after_the_start(tmp_path: Path):
    save_spec(tmp_path, SPEC, today=BEFORE_START)
    stored = assign(tmp_path, SPEC.name, today=BEFORE_START)
    assert assign(tmp_path, SPEC.name, today=AFTER_START).equals(stored)  # re-running is a no-op
    changed = SPEC.model_copy(update={"seed": 99})
    with pytest.raises(ExperimentError, match="already exists"):
        save_spec(tmp_path, changed, today=BEFORE_START)
    with pytest.raises(ExperimentError, match="can no longer change"):
        save_spec(tmp_path, changed, replace=True, today=AFTER_START)
    # a declaration edited behind our back after the start: the stored schedule is kept, loudly
    (tmp_path / "experiments" / SPEC.name / "experiment.json").write_text(changed.model_dump_json())
    with pytest.raises(ExperimentError, match="refusing to change it"):
        assign(tmp_path, SPEC.name, today=AFTER_START)
    assert load_assignment(tmp_path, SPEC.name).equals(stored)
    # before the start, a replaced declaration gets a fresh schedule
    save_spec(tmp_path, changed, replace=True, today=BEFORE_START)
    assert not assign(tmp_path, SPEC.name, today=BEFORE_START).equals(stored)


def _tiny_panel(y: np.ndarray, observed: np.ndarray) -> Panel:
    """2 zones x 4 days, zone-day unit: cells ordered zone-major."""
    zone, day = np.repeat([0, 1], 4), np.tile(np.arange(4), 2)
    return Panel(zones=["A", "B"], days=list(range(4)), zone=zone, day=day, period=day,
                 treated=observed[zone, day].astype(float),
                 y=y, x=None, dropped=0, n_periods=4)


def test_randomisation_p_value_is_exact_on_an_enumerable_design():
    # Paired design, 2 zones x 4 days: in each pair of days one zone is treated first -> 2 x 2 = 4 schedules.
    everything = np.array([[[a, 1 - a, b, 1 - b], [1 - a, a, 1 - b, b]] for a, b in itertools.product([1, 0], [1, 0])],
                          dtype=bool)
    drawn = {arms.tobytes() for arms in draw_arms(2, 4, np.random.default_rng(0), draws=400)}
    assert drawn == {arms.tobytes() for arms in everything}  # the procedure draws exactly these four
    observed = everything[0]
    y = np.array([5.0, 1.0, 4.0, 2.0, 1.0, 3.0, 2.0, 2.5])  # zone A then B, days 0..3
    panel = _tiny_panel(y, observed)
    model = fit(panel)
    a, c = permutation_estimates(panel, model, everything)

    def ols_tau(arms: np.ndarray) -> float:  # the same estimator written independently with dummies
        d = arms[panel.zone, panel.day].astype(float)
        design = np.column_stack([d, np.ones(8), panel.zone == 1, *(panel.day == k for k in (1, 2, 3))]).astype(float)
        return float(sm.OLS(y, design).fit().params[0])

    taus = np.array([ols_tau(arms) for arms in everything])
    assert model.tau == pytest.approx(taus[0])
    assert a == pytest.approx(taus)
    # By hand: with two zones TWFE regresses the daily difference A-B = (4, -2, 2, -0.5) on s = +-1 (A
    # treated or not): tau = sum(diff * s) / 4. Observed s = (1, -1, 1, -1): 8.5 / 4 = 2.125; its mirror
    # gives -2.125; the other pair (1, -1, -1, 1) gives +-0.875. So 2 of the 4 schedules are as extreme.
    assert sorted(np.round(taus, 6)) == [-2.125, -0.875, 0.875, 2.125] and taus[0] == pytest.approx(2.125)
    assert ri_pvalues(a, c, model.tau, 0.0, add_observed=False) == pytest.approx(0.5)
    assert np.mean(np.abs(taus) >= abs(taus[0]) - 1e-12) == pytest.approx(0.5)


def _synthetic_metrics(seed: int, pattern_sd: float = 0.3, noise_sd: float = 0.05) -> pl.DataFrame:
    """log metric = zone + day + zone x weekday pattern + noise, over SPEC's pre-period and experiment."""
    rng = np.random.default_rng(seed)
    days = [SPEC.pre_start + timedelta(days=i) for i in range((SPEC.end - SPEC.pre_start).days + 1)]
    pattern = rng.normal(0, pattern_sd, (len(ZONES), 7))
    zone_level, day_level = rng.normal(7, 0.5, len(ZONES)), rng.normal(0, 0.1, len(days))
    rows = [(zone, day, float(np.exp(zone_level[z] + day_level[k] + pattern[z, day.weekday()] + rng.normal(0, noise_sd))))
            for z, zone in enumerate(ZONES) for k, day in enumerate(days)]
    return pl.DataFrame(rows, schema={"zone": pl.Utf8, "date": pl.Date, "metric": pl.Float64}, orient="row")


def test_cuped_covariate_shrinks_the_estimators_spread_under_the_design():
    panel = build_panel(SPEC, _synthetic_metrics(seed=1), schedule(SPEC))
    arms = draw_arms(len(ZONES), SPEC.n_periods, np.random.default_rng(2), draws=500)
    with_covariate, _ = permutation_estimates(panel, adjusted := fit(panel, use_covariate=True), arms)
    without, _ = permutation_estimates(panel, fit(panel, use_covariate=False), arms)
    assert adjusted.theta == pytest.approx(1.0, abs=0.1)  # the pattern is fully persistent
    assert np.std(with_covariate) < 0.5 * np.std(without)


def test_unbalanced_panels_match_the_dummy_variable_regression():
    metrics = _synthetic_metrics(seed=3).filter(~((pl.col("zone") == "Z3") & (pl.col("date").dt.day() % 5 == 0)))
    panel = build_panel(SPEC, metrics, schedule(SPEC))
    assert panel.dropped > 0
    assert fit(panel).tau == pytest.approx(cluster_robust(panel)["cluster"]["log_effect"], abs=1e-9)


def test_twfe_recovers_an_injected_lift_within_its_confidence_interval():
    assignment = schedule(SPEC)
    lines = generate_receipts(SPEC.pre_start, SPEC.end, seed=21,
                              effect=InjectedEffect.from_assignment(assignment, lift=0.10))
    result = analyse(SPEC, lines.zone_day_sales(), assignment, permutations=1000, bootstrap=499)
    assert result.ci_low < 0.10 < result.ci_high
    assert result.cluster["ci_low"] < 0.10 < result.cluster["ci_high"]
    assert result.p_value < 0.01 and result.wild_bootstrap["p_value"] < 0.01
    assert 0 < result.mde < 0.10  # a 10 % lift is detectable in this store
    assert result.n_cells == 8 * 56
    assert result.theta > 0.3  # the weekday covariate carries signal


def test_weekly_switchback_with_washout_analyses_only_the_days_after_the_washout(tmp_path: Path):
    weekly = ExperimentSpec.model_validate({**SPEC.model_dump(), "unit": "zone-week", "washout_days": 2})
    assignment = schedule(weekly)
    lines = generate_receipts(weekly.pre_start, weekly.end, seed=22,
                              effect=InjectedEffect.from_assignment(assignment, lift=0.15))
    lines.zone_day_sales().write_parquet(tmp_path / "zone_days.parquet")  # e.g. a mart export
    metrics = read_metrics_file(tmp_path / "zone_days.parquet")
    result = analyse(weekly, metrics, assignment, permutations=1000, bootstrap=199)
    assert result.n_cells == 8 * (56 - 8 * 2)
    assert result.ci_low < 0.15 < result.ci_high and result.p_value < 0.05
    assert result.mde is not None and result.mde > 0


def test_cli_create_assign_analyse_on_a_workspace(tmp_path: Path):
    config = init_workspace(tmp_path / "ws", shop_id="shop1", timezone="UTC")
    config_file = str(config.workspace_dir / "watershop.yaml")
    pre_start, start, end = date(2026, 1, 5), date(2026, 1, 19), date(2026, 2, 15)
    runner = CliRunner()

    def run(*args: str) -> str:
        outcome = runner.invoke(main, ["experiment", *args, "--config", config_file], catch_exceptions=False)
        assert outcome.exit_code == 0, outcome.output
        return outcome.output

    run("create", "endcaps", "--zones", ",".join(ZONES), "--unit", "zone-day", "--pre-start", pre_start.isoformat(),
        "--start", start.isoformat(), "--end", end.isoformat(), "--treatment", "end-cap displays", "--seed", "7")
    out_csv = tmp_path / "schedule.csv"
    run("assign", "endcaps", "--out", str(out_csv))
    schedule_rows = pl.read_csv(out_csv)
    assert schedule_rows.columns[:3] == ["zone", "date", "arm"] and schedule_rows.height == 8 * 28

    # the shop's receipts, generated with a +15 % lift on the treated zone-days, go through the landing CSVs
    assignment = pl.read_csv(out_csv, try_parse_dates=True)
    lines = generate_receipts(pre_start, end, seed=33, profile=StoreProfile(receipts_per_day=150),
                              effect=InjectedEffect.from_assignment(assignment, lift=0.15))
    for path in write_receipt_csvs(lines, config.landing_dir / "receipts" / "shop1", "shop1"):
        write_receipts_partitions(validate_receipts_csv(path), config.lake_root, "shop1",
                                  date.fromisoformat(path.stem[-10:]))
    ZoneMap.constant(DEFAULT_ZONE_OF_CATEGORY).write_csv(config.workspace_dir / ZONE_MAP_FILE)

    result = json.loads(run("analyse", "endcaps", "--json", "--permutations", "500"))
    assert {"effect", "ci_low", "ci_high", "p_value", "mde", "n_cells"} <= set(result)
    assert result["n_cells"] == 8 * 28
    assert result["ci_low"] < 0.15 < result["ci_high"] and result["p_value"] < 0.05
    assert Path(result["report"]).read_text().startswith("<!doctype html>")
    assert (Path(result["report"]).parent / "experiment.png").stat().st_size > 10_000

    refused = runner.invoke(main, ["experiment", "create", "endcaps", "--zones", "Z1,Z2", "--pre-start", "2026-01-05",
                                   "--start", "2026-01-19", "--end", "2026-02-15", "--replace", "--config", config_file])
    assert refused.exit_code != 0 and "can no longer change" in refused.output
