"""POS benchmark: a year of data for 20 shops (~2 M transactions) through ingest and dbt.

Prints wall time, peak memory and rows/s for the ingest and for the full dbt build, then the time to
add one more day (ingest + incremental dbt build + publish, and the same through a Dagster run) with
30 days and with 365 days of history: it must not grow with the history.

    .venv/bin/python bench/bench_pos.py [--shops 20] [--days 365] [--per-day 275] [--workdir bench/out/pos]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from watershop_dagster.config import CONFIG_FILENAME, load_config  # noqa: E402

START = date(2025, 1, 1)


def write_config(root: Path, shops: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [f'partitions_start: "{START - timedelta(days=1)}"', "shops:"]
    for index in range(1, shops + 1):
        lines += [f"  - id: s{index:02d}", "    timezone: Asia/Kolkata", "    prices: {10L: 20, 20L: 35}"]
    path = root / CONFIG_FILENAME
    path.write_text("\n".join(lines) + "\n")
    return path


def _ingest_shop(args: tuple[str, str, str, str]) -> tuple[int, int, int]:
    """One shop's whole range in one call: the folder is listed and each file read once."""
    from watershop_dagster.pos.ingest import ingest_partitions

    config_file, shop_id, start, end = args
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    days = [first + timedelta(days=d) for d in range((last - first).days + 1)]
    results = ingest_partitions(load_config(config_file), shop_id, days).values()
    return len(days), sum(r.valid.height for r in results), sum(r.rejected.height for r in results)


def phase_generate(config_file: str, start: date, end: date, per_day: float) -> dict:
    from watershop_dagster.pos.generate import write_transaction_csvs

    paths = write_transaction_csvs(load_config(config_file), start, end, seed=1, transactions_per_day=per_day)
    return {"files": len(paths)}


def phase_ingest(config_file: str, start: date, end: date, workers: int) -> dict:
    config = load_config(config_file)
    jobs = [(config_file, shop, start.isoformat(), end.isoformat()) for shop in config.shop_ids]
    with ProcessPoolExecutor(workers) as pool:
        counts = list(pool.map(_ingest_shop, jobs))
    return {"partitions": sum(c[0] for c in counts), "rows": sum(c[1] for c in counts),
            "rejected": sum(c[2] for c in counts)}


def phase_dbt(config_file: str, shop_id: str | None, day: str | None, day_to: str | None = None) -> dict:
    """One dbt build (in-process, as the marts asset runs it) and the publish."""
    from watershop_dagster.dbt_runner import project_runner
    from watershop_dagster.warehouse import build_lock, publish_marts

    config = load_config(config_file)
    scope = {"shop_id": shop_id, "date": day, "date_to": day_to or day} if shop_id else None
    with build_lock(config):
        result = project_runner().build(config, scope)
        if not result.success:
            raise SystemExit(f"dbt build failed: {result.error or result.failures}")
        publish_marts(config)
    return {}


def phase_dagster_run(config_file: str, shop_id: str, day: str) -> dict:
    from watershop_dagster.orchestration.runner import run_range

    runs = run_range(date.fromisoformat(day), date.fromisoformat(day), config_file, [shop_id])
    if not runs[0].success:
        raise SystemExit(f"dagster run failed: {runs[0].failed_steps}")
    return {}


def phase_ingest_one(config_file: str, shop_id: str, day: str) -> dict:
    from watershop_dagster.pos.ingest import ingest_partition

    result = ingest_partition(load_config(config_file), shop_id, date.fromisoformat(day))
    return {"rows": result.valid.height}


PHASES = {"generate": phase_generate, "ingest": phase_ingest, "ingest_one": phase_ingest_one, "dbt": phase_dbt, "dagster_run": phase_dagster_run}


def measure(phase: str, **kwargs) -> dict:
    """Run one phase in a child process; report its wall time and peak RSS (incl. its own children)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--phase", phase, "--kwargs", json.dumps(kwargs, default=str)],
        stdout=subprocess.PIPE, text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read()
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phase {phase} failed:\n{output}")
    result = json.loads(output.strip().splitlines()[-1])
    # the child's CPU seconds include those of the processes it waited for (the ingest's workers)
    result.update(wall_s=time.perf_counter() - started, cpu_s=usage.ru_utime + usage.ru_stime,
                  peak_rss_mb=usage.ru_maxrss / 1024)
    return result


def add_one_day(config_file: str, history_end: date, per_day: float) -> dict:
    day = history_end + timedelta(days=1)
    config = load_config(config_file)
    from watershop_dagster.pos.generate import write_transaction_csvs

    write_transaction_csvs(config, day, day, seed=1, shop_ids=[config.shop_ids[0]], transactions_per_day=per_day)
    ingest = measure("ingest_one", config_file=config_file, shop_id=config.shop_ids[0], day=day.isoformat())
    dbt = measure("dbt", config_file=config_file, shop_id=config.shop_ids[0], day=day.isoformat())
    run = measure("dagster_run", config_file=config_file, shop_id=config.shop_ids[0], day=day.isoformat())
    return {"ingest": ingest, "dbt_incremental": dbt, "dagster_run": run}


def build_history(root: Path, shops: int, days: int, per_day: float) -> tuple[str, dict]:
    if root.exists():
        shutil.rmtree(root)
    config_file = str(write_config(root, shops))
    end = START + timedelta(days=days - 1)
    figures = {
        "generate": measure("generate", config_file=config_file, start=START, end=end, per_day=per_day),
        "ingest": measure("ingest", config_file=config_file, start=START, end=end, workers=2),
        "dbt_full_build": measure("dbt", config_file=config_file, shop_id=None, day=None),
    }
    figures["ingest"]["rows_per_s"] = figures["ingest"]["rows"] / figures["ingest"]["wall_s"]
    figures["dbt_full_build"]["rows_per_s"] = figures["ingest"]["rows"] / figures["dbt_full_build"]["wall_s"]
    figures["add_one_day"] = add_one_day(config_file, end, per_day)
    # what a single-run backfill of a month of one shop costs (one dbt build over the range)
    month_start = end - timedelta(days=29)
    figures["backfill_30_days"] = measure("dbt", config_file=config_file, shop_id=load_config(config_file).shop_ids[0],
                                          day=month_start.isoformat(), day_to=end.isoformat())
    return config_file, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--short-days", type=int, default=30, help="the smaller history for the add-a-day comparison")
    parser.add_argument("--per-day", type=float, default=275.0)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "pos")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        kwargs = json.loads(args.kwargs)
        for key in ("start", "end"):
            if key in kwargs:
                kwargs[key] = date.fromisoformat(kwargs[key])
        print(json.dumps(PHASES[args.phase](**kwargs)))
        return

    _, short = build_history(args.workdir / "short", args.shops, args.short_days, args.per_day)
    _, full = build_history(args.workdir / "full", args.shops, args.days, args.per_day)
    print(f"POS benchmark: {args.shops} shops x {args.days} days, ~{args.per_day:g} transactions per shop-day, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; each figure is wall / CPU (user+sys) seconds")
    for label, figures in ((f"{args.days}-day history", full), (f"{args.short_days}-day history", short)):
        ing, dbt = figures["ingest"], figures["dbt_full_build"]
        print(f"\n[{label}]")
        print(f"  generate CSVs : {figures['generate']['files']} files in {_times(figures['generate'])}")
        print(f"  ingest        : {ing['rows']:,} rows ({ing['rejected']} rejected) in {_times(ing)}, "
              f"{ing['rows_per_s']:,.0f} rows/s, peak RSS {ing['peak_rss_mb']:.0f} MB (2 workers)")
        print(f"  dbt full build: {_times(dbt)}, {dbt['rows_per_s']:,.0f} rows/s, peak RSS {dbt['peak_rss_mb']:.0f} MB")
        print(f"  CSVs to published marts: {_times(ing, dbt)}")
        add = figures["add_one_day"]
        print(f"  add one day   : ingest {_times(add['ingest'])} + dbt incremental {_times(add['dbt_incremental'])}; "
              f"whole Dagster run {_times(add['dagster_run'])}")
        month = figures["backfill_30_days"]
        print(f"  re-build 30 days of one shop in one dbt run: {_times(month)} "
              f"(30 one-day runs: ~{30 * add['dbt_incremental']['wall_s']:.0f} s)")


def _times(*figures: dict) -> str:
    """Wall and CPU seconds of one or more phases run one after the other."""
    return f"{sum(f['wall_s'] for f in figures):.1f} s / {sum(f['cpu_s'] for f in figures):.1f} s CPU"


if __name__ == "__main__":
    main()
