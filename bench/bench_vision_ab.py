"""Vision speed of several checkouts on the same footage, alternated (A/B before and after a change).

The machine's speed drifts by ±10 % over a day, so versions are compared in alternated runs on one
rendering: render the footage with `bench_vision.py` first (its --out folder), then

    .venv/bin/python bench/bench_vision_ab.py --rounds 4 /path/to/checkout_a /path/to/checkout_b

runs `process_footage` (2 workers, default settings) of each checkout, with its own .venv, in turn,
and prints per run and per checkout the wall real-time factor and the workers' CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

RUN = """
import json, sys, time
from datetime import date
from pathlib import Path
sys.path.insert(0, {repo!r})
from watershop_dagster.config import ShopConfig, VisionConfig
from watershop_dagster.vision.footage import discover_footage
from watershop_dagster.vision.pipeline import process_footage
shop = ShopConfig(id="bench", timezone="Asia/Kolkata", cameras=["counter"])
files, bad = discover_footage(Path({out!r}), shop, date(2025, 6, 2))
assert files and not bad, (files, bad)
started = time.perf_counter()
result = process_footage(files, VisionConfig(), workers={workers})
wall = time.perf_counter() - started
print(json.dumps(dict(wall_s=wall, footage_s=result.stats["footage_s"], cpu_s=result.stats["cpu_s"],
                      tracks=result.face_tracks.height, embeddings=result.face_embeddings.height)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", type=Path, nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "vision", help="bench_vision.py's footage")
    args = parser.parse_args()
    runs: dict[Path, list[dict]] = {c: [] for c in args.checkouts}
    for _ in range(args.rounds):
        for checkout in args.checkouts:
            code = RUN.format(repo=str(checkout.resolve()), out=str(args.out.resolve()), workers=args.workers)
            done = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c", code], cwd=checkout,
                                  capture_output=True, text=True, check=True)
            run = json.loads(done.stdout.strip().splitlines()[-1])
            run["realtime_x"] = run["footage_s"] / run["wall_s"]
            runs[checkout].append(run)
            print(f"{checkout}: {run['realtime_x']:.1f}x real time (wall), {run['cpu_s']:.1f} CPU-s, "
                  f"{run['tracks']} tracks, {run['embeddings']} embeddings", flush=True)
    for checkout, done in runs.items():
        factors = [r["realtime_x"] for r in done]
        cpu = [r["cpu_s"] for r in done]
        print(f"{checkout}: {statistics.fmean(factors):.1f} ± {statistics.pstdev(factors):.1f}x real time "
              f"[{min(factors):.1f}-{max(factors):.1f}], {statistics.fmean(cpu):.1f} CPU-s ({len(done)} runs)")


if __name__ == "__main__":
    main()
