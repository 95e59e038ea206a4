"""dbt build wall time on an existing workspace's lake: what a mart change costs the pipeline.

Builds the workspace's dbt project into a fresh DuckDB file in a temp folder (the workspace's own
warehouse is never touched), `--runs` times each: one full build (every shop and day) and one
scoped build of the last shop-day with data (the daily case, incremental over the full build).
The project is parsed once before timing (the pipeline parses once per workspace and process).

    .venv/bin/python bench/bench_dbt_build.py WORKSPACE/watershop.yaml [--runs 3]

e.g. on the golden test's workspace (pytest --basetemp=/tmp/golden tests/test_golden_marts.py):
    .venv/bin/python bench/bench_dbt_build.py /tmp/golden/golden0/watershop.yaml
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from watershop_dagster import catalog, lake
from watershop_dagster.config import load_config
from watershop_dagster.dbt_runner import project_runner


def timed_build(config, scope=None) -> float:
    start = time.perf_counter()
    result = project_runner().build(config, scope)
    elapsed = time.perf_counter() - start
    if not result.success:
        raise SystemExit(f"dbt build failed: {result.error or result.failures}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source = load_config(args.config)
    shop = source.shops[0].id
    days = lake.dated_partitions(source.lake_root, catalog.TRANSACTIONS, shop)
    day = days[-1][0].isoformat() if days else None
    full, scoped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        config = source.model_copy(update={"paths": source.paths.model_copy(
            update={"lake": source.lake_root, "warehouse": Path(tmp) / "warehouse"})})
        project_runner().manifest(config)  # parse once, outside the timings
        for run in range(args.runs):
            config.build_db.unlink(missing_ok=True)
            full.append(timed_build(config))
            if day:
                scoped.append(timed_build(config, {"shop_id": shop, "date": day}))
    for name, times in (("full build", full), (f"one shop-day ({shop} {day})", scoped)):
        if times:
            print(f"{name}: median {statistics.median(times):.2f} s, min {min(times):.2f} s, "
                  f"max {max(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
