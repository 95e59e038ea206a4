"""Experiment validation: does `watershop experiment analyse` say what is true, how often?

Generated supermarket receipts (8 zones, 4-week pre-period, 8-week zone-day switchback), repeated
--reps times with fresh seeds (from 10_000 up; the tests use seeds below 1_000). Each repetition draws
its own schedule (the design's randomness is part of what is validated) and analyses:
  null   no injected effect            -> false-positive rate at 5 % (must be 3-7 %)
  lift   +10 % on treated zone-days    -> 95 % CI coverage of the truth (must be 93-97 %) and power
  shift  +10 % taken from other zones  -> how often the store guard rail flags it (--shift-reps)
Beside the primary analysis (TWFE + CUPED, randomisation inference) it runs, on the same data: the
cluster-robust t(G-1) CI, the wild cluster bootstrap, the same TWFE with iid SEs, and a naive post-only
comparison (mean sales of treated vs control zone-days, Welch-style iid SE). Figures carry Monte-Carlo
standard errors; the runtime is printed.

    .venv/bin/python bench/bench_experiment.py [--reps 500] [--workers 2] [--permutations 1000]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker: 2 cores, 2 workers

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LIFT = 0.10
SEED_BASE = 10_000
PRE_START, START, END = date(2025, 3, 3), date(2025, 3, 31), date(2025, 5, 25)  # 28 + 56 days


def _naive_post_only(metrics, assignment) -> dict:
    """What a spreadsheet does: mean sales of treated vs control zone-days, iid SEs, delta method."""
    import polars as pl
    from scipy import stats

    cells = assignment.filter(~pl.col("washout")).join(metrics, on=["zone", "date"])
    treated = cells.filter(pl.col("arm") == "treatment")["metric"].to_numpy()
    control = cells.filter(pl.col("arm") == "control")["metric"].to_numpy()
    ratio = treated.mean() / control.mean()
    # log ratio's variance by the delta method
    var = treated.var(ddof=1) / (len(treated) * treated.mean() ** 2) + control.var(ddof=1) / (len(control) * control.mean() ** 2)
    se = float(np.sqrt(var))
    z = stats.norm.ppf(0.975)
    log_ratio = float(np.log(ratio))
    return {"effect": ratio - 1, "ci_low": np.expm1(log_ratio - z * se), "ci_high": np.expm1(log_ratio + z * se),
            "p_value": float(2 * stats.norm.sf(abs(log_ratio / se)))}


def one_repetition(args: tuple[int, str, int, int, float]) -> dict:
    from watershop_dagster.experiment.analysis import analyse
    from watershop_dagster.experiment.design import ExperimentSpec, schedule
    from watershop_dagster.receipts.generate import ZONES, InjectedEffect, generate_receipts

    seed, scenario, permutations, bootstrap, lift = args
    spec = ExperimentSpec(name=f"bench{seed}", zones=list(ZONES), unit="zone-day", pre_start=PRE_START,
                          start=START, end=END, seed=seed)
    assignment = schedule(spec)
    lift = 0.0 if scenario == "null" else lift
    effect = InjectedEffect.from_assignment(assignment, lift, displaced=1.0 if scenario == "shift" else 0.0)
    metrics = generate_receipts(PRE_START, END, seed=seed, effect=effect).zone_day_sales()
    result = analyse(spec, metrics, assignment, permutations=permutations, bootstrap=bootstrap)
    methods = {
        "ri": {"effect": result.effect, "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value},
        "cluster_t": result.cluster,
        "wild_bootstrap": {"p_value": result.wild_bootstrap["p_value"]},
        "iid_se": result.iid,
        "naive_post_only": _naive_post_only(metrics, assignment),
    }
    return {"seed": seed, "scenario": scenario, "lift": lift, "mde": result.mde,
            "guardrail": result.guardrail.get("verdict", ""), "methods": methods}


def _rate(hits: list[bool]) -> tuple[float, float]:
    p = float(np.mean(hits))
    return p, float(np.sqrt(p * (1 - p) / len(hits)))


def summarise(rows: list[dict], scenario: str, truth: float) -> dict:
    mine = [r for r in rows if r["scenario"] == scenario]
    out = {"reps": len(mine), "truth": truth}
    for method in mine[0]["methods"]:
        entries = [r["methods"][method] for r in mine]
        stats = {"reject_5pct": _rate([e["p_value"] < 0.05 for e in entries])}
        if "ci_low" in entries[0]:
            stats["coverage_95"] = _rate([e["ci_low"] <= truth <= e["ci_high"] for e in entries])
            stats["mean_effect"] = float(np.mean([e["effect"] for e in entries]))
            stats["mean_ci_width"] = float(np.mean([e["ci_high"] - e["ci_low"] for e in entries]))
        out[method] = stats
    mdes = [r["mde"] for r in mine if r["mde"] is not None]
    out["mde_mean"] = float(np.mean(mdes)) if mdes else None
    verdicts = [r["guardrail"] for r in mine]
    out["guardrail"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    return out


def _fmt(pair) -> str:
    return f"{100 * pair[0]:5.1f}% ± {100 * pair[1]:.1f}"


def _print_lift_only(report: dict, jobs: int, seconds: float, args) -> None:
    lift = report["lift"]
    print(f"{jobs} analyses in {seconds:.0f} s; injected lift {100 * args.lift:.1f}%; MC standard errors after ±")
    for method, stats in lift.items():
        if isinstance(stats, dict) and "reject_5pct" in stats:
            extra = f"  coverage {_fmt(stats['coverage_95'])}" if "coverage_95" in stats else ""
            print(f"{method:16} power {_fmt(stats['reject_5pct'])}{extra}")
    print(f"MDE from pre-period (mean): {100 * lift['mde_mean']:.2f}%")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--shift-reps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=399)
    parser.add_argument("--lift", type=float, default=LIFT, help="Injected lift of the lift and shift scenarios.")
    parser.add_argument("--only-lift", action="store_true", help="Run the lift scenario alone (e.g. power at the MDE).")
    parser.add_argument("--json", type=Path, help="Also write every figure here.")
    args = parser.parse_args()

    scenarios = ("lift",) if args.only_lift else ("null", "lift")
    jobs = [(SEED_BASE + i, scenario, args.permutations, args.bootstrap, args.lift)
            for i in range(args.reps) for scenario in scenarios]
    if not args.only_lift:
        jobs += [(SEED_BASE + i, "shift", args.permutations, args.bootstrap, args.lift) for i in range(args.shift_reps)]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(one_repetition, jobs, chunksize=8))
    seconds = time.perf_counter() - started

    report = {
        "design": "8 zones, zone-day switchback, 28-day pre-period, 56 experiment days, 400 receipts/day",
        "permutations": args.permutations, "bootstrap": args.bootstrap, "workers": args.workers,
        "runtime_seconds": round(seconds, 1),
        "lift": summarise(rows, "lift", args.lift),
    }
    if args.only_lift:
        _print_lift_only(report, len(jobs), seconds, args)
        return
    report["null"] = summarise(rows, "null", 0.0)
    if args.shift_reps:
        report["shift"] = summarise(rows, "shift", args.lift)
    print(f"{len(jobs)} analyses in {seconds:.0f} s ({args.workers} workers); MC standard errors after ±")
    for method in report["null"]:
        if not isinstance(report["null"][method], dict) or "reject_5pct" not in report["null"][method]:
            continue
        null, lift = report["null"][method], report["lift"][method]
        line = f"{method:16} FPR {_fmt(null['reject_5pct'])}  power {_fmt(lift['reject_5pct'])}"
        if "coverage_95" in lift:
            line += (f"  coverage(lift) {_fmt(lift['coverage_95'])}  coverage(null) {_fmt(null['coverage_95'])}"
                     f"  mean effect {100 * lift['mean_effect']:+.2f}%  CI width {100 * lift['mean_ci_width']:.2f} pp")
        print(line)
    print(f"MDE from pre-period (mean): {100 * report['lift']['mde_mean']:.2f}%")
    print(f"guard rail verdicts  null: {report['null']['guardrail']}  lift: {report['lift']['guardrail']}")
    if args.shift_reps:
        shift = report["shift"]
        print(f"shift (sales moved, no new sales; truth for the store 0): TWFE mean effect "
              f"{100 * shift['ri']['mean_effect']:+.2f}%, guard rail {shift['guardrail']}")
    ri_fpr, ri_cov = report["null"]["ri"]["reject_5pct"][0], report["lift"]["ri"]["coverage_95"][0]
    print(f"targets: RI FPR in [3%, 7%]: {'PASS' if 0.03 <= ri_fpr <= 0.07 else 'FAIL'}; "
          f"RI coverage in [93%, 97%]: {'PASS' if 0.93 <= ri_cov <= 0.97 else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
