"""Before/after figures for the POS path on one machine state: two checkouts run alternately.

bench_pos.py measures one checkout once; on a shared machine its figures move with the load. This one
builds one history (20 shops x 365 days by default, CSVs and ingest with this checkout's code), copies
it once per checkout, then alternates the checkouts run by run: a dbt full build + publish (each
checkout's own bench_pos.py phase), then one more shop-day through `watershop run` (a new day each
round). Every run is a child process; wall and CPU seconds (user+sys, its children included) are
printed per run and as mean ± sd per checkout.

    .venv/bin/python bench/bench_pos_ab.py --before /path/to/old/checkout [--after .] [--seed 7] [--rounds 5]

Each checkout needs its own .venv (`make env` in it): `watershop run` imports the checkout it runs in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_pos import START, measure, write_config  # noqa: E402
from watershop_dagster.config import CONFIG_FILENAME, load_config  # noqa: E402


def timed(command: list[str], cwd: Path) -> dict:
    """Run a child to the end; its wall and CPU seconds. Its output is kept only if it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "CI": "true"})
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime}


def full_build(checkout: Path, workspace: Path) -> dict:
    kwargs = {"config_file": str(workspace / CONFIG_FILENAME), "shop_id": None, "day": None}
    return timed([str(checkout / ".venv/bin/python"), str(checkout / "bench/bench_pos.py"), "--phase", "dbt",
                  "--kwargs", json.dumps(kwargs)], checkout)


def day_run(checkout: Path, workspace: Path, day: date, seed: float, per_day: float) -> dict:
    from watershop_dagster.pos.generate import write_transaction_csvs

    config = load_config(workspace / CONFIG_FILENAME)
    shop = config.shop_ids[0]
    write_transaction_csvs(config, day, day, seed=seed, shop_ids=[shop], transactions_per_day=per_day)
    return timed([str(checkout / ".venv/bin/python"), "-m", "watershop_dagster.cli", "run", "--config",
                  str(workspace / CONFIG_FILENAME), "--from", day.isoformat(), "--to", day.isoformat(),
                  "--shop", shop], checkout)


def summary(runs: list[dict], key: str) -> str:
    values = [run[key] for run in runs]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare against")
    parser.add_argument("--after", type=Path, default=REPO)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=float, default=275.0)
    parser.add_argument("--seed", type=int, default=7, help="of the generated CSVs (tune on another)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "pos_ab")
    args = parser.parse_args()

    history = args.workdir / "history"
    if history.exists():
        shutil.rmtree(history)
    config_file = str(write_config(history, args.shops))
    end = START + timedelta(days=args.days - 1)
    from watershop_dagster.pos.generate import write_transaction_csvs

    write_transaction_csvs(load_config(config_file), START, end, seed=args.seed, transactions_per_day=args.per_day)
    ingest = measure("ingest", config_file=config_file, start=START, end=end, workers=2)
    print(f"ingest: {ingest['rows']:,} rows, {ingest['wall_s']:.1f} s / {ingest['cpu_s']:.1f} s CPU", flush=True)

    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    workspaces = {}
    for label in checkouts:
        workspaces[label] = args.workdir / label
        if workspaces[label].exists():
            shutil.rmtree(workspaces[label])
        shutil.copytree(history, workspaces[label], symlinks=True)
    figures: dict[tuple[str, str], list[dict]] = {}
    for round_ in range(args.rounds):
        for label, checkout in checkouts.items():
            run = full_build(checkout, workspaces[label])
            figures.setdefault(("full build", label), []).append(run)
            print(f"full build {label} #{round_}: {run['wall_s']:.1f} s / {run['cpu_s']:.1f} s CPU "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    for round_ in range(args.rounds):
        day = end + timedelta(days=round_ + 1)
        for label, checkout in checkouts.items():
            run = day_run(checkout, workspaces[label], day, args.seed, args.per_day)
            figures.setdefault(("one more day", label), []).append(run)
            print(f"one more day {label} {day}: {run['wall_s']:.1f} s / {run['cpu_s']:.1f} s CPU "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\n{args.shops} shops x {args.days} days, seed {args.seed}, {args.rounds} alternating runs each:")
    for (stage, label), runs in figures.items():
        print(f"  {stage:13} {label:6}: wall {summary(runs, 'wall_s')} s, CPU {summary(runs, 'cpu_s')} s")


if __name__ == "__main__":
    main()
