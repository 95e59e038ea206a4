"""People tracking of several checkouts on the same clips, scored as the behaviour marts see it, paired.

A tracker change can follow people better frame by frame and still lose zone visits or loiterers
(README, "Where zone visits are lost"), and the clips differ a lot from seed to seed. So every
checkout tracks the same rendered clips and is scored per seed on what the issue asks: zone
visits (recall, precision at interval IoU >= 0.5, dwell MAE), loitering events found and raised,
footfall error, beside MOTA / IDF1 / ID switches. The differences to the first checkout are paired
by seed and printed with their standard errors. Look with some seeds, then score on fresh ones.

    .venv/bin/python bench/bench_people_ab.py . /path/to/other/checkout --seeds 9851 9852 9853

Clips are rendered once by this checkout's generator (the scene of bench_behaviour.py: 1280x720,
15 fps, 10 shoppers a minute, one loiterer) into --out/<seed>/ and reused; each checkout tracks
them and runs its zone analytics in its own .venv, and this checkout scores all of them against
its truth.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_behaviour as behaviour  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("recall", "precision", "dwell_mae", "footfall_error", "mota", "idf1", "id_switches", "cpu_per_minute")

TRACK = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import polars as pl
from datetime import datetime
from watershop_dagster.config import ShopConfig
from watershop_dagster.people import track_people
from watershop_dagster.zones import analyse_observations
folder = Path({folder!r})
cpu = time.process_time()
observations = track_people(folder / "clip.mp4", {camera!r}, datetime.fromisoformat({start!r}))
cpu = time.process_time() - cpu
shop = ShopConfig.model_validate(json.loads((folder / "shop.json").read_text()))
result = analyse_observations(observations, shop.zones({camera!r}))
for name, frame in (("observations", observations), ("visits", result.visits), ("loitering", result.loitering),
                    ("footfall", result.footfall)):
    frame.write_parquet(folder / f"{{name}}_{tag}.parquet")
print(json.dumps(dict(cpu_s=cpu)))
"""


def render(seed: int, duration: float, size: tuple[int, int], folder: Path) -> None:
    """The clip and its truth, once per seed (bench_behaviour's scene)."""
    from watershop_dagster.synthetic import supermarket

    if (folder / "truth_footfall.parquet").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    scene = behaviour.bench_scene(seed, duration, size)
    supermarket.render_scene(scene, folder / "clip.mp4", duration)
    truth = supermarket.scene_truth(scene, duration)
    (folder / "shop.json").write_text(json.dumps({"id": "bench", "cameras": truth.zone_config["cameras"]}))
    truth.boxes.write_parquet(folder / "truth_boxes.parquet")
    for name, frame in (("visits", truth.zone_visits), ("loitering", truth.loitering), ("footfall", truth.footfall)):
        frame.write_parquet(folder / f"truth_{name}.parquet")  # written last: a complete folder has it


def score(folder: Path, tag: str) -> dict:
    """One checkout's figures on one clip."""
    from watershop_dagster.people.evaluation import score_tracks

    read = lambda name: pl.read_parquet(folder / f"{name}.parquet")  # noqa: E731
    errors, n_pred, n_true = behaviour.visit_matches(read(f"visits_{tag}"), read("truth_visits"))
    found, raised, true_events = behaviour.visit_matches(
        behaviour.loitering_intervals(read(f"loitering_{tag}")), behaviour.loitering_intervals(read("truth_loitering")))
    directions = lambda name: dict(read(name)["direction"].value_counts().iter_rows())  # noqa: E731
    tracks = score_tracks(read(f"observations_{tag}"), read("truth_boxes"), behaviour.START, behaviour.FPS)
    return {"recall": len(errors) / n_true if n_true else 1.0, "precision": len(errors) / n_pred if n_pred else 1.0,
            "dwell_mae": statistics.mean(errors) if errors else 0.0,
            "loitering_found": len(found), "loitering_raised": raised, "loitering_true": true_events,
            "footfall_error": behaviour.footfall_error(directions(f"footfall_{tag}"), directions("truth_footfall")),
            "mota": tracks.mota, "idf1": tracks.idf1, "id_switches": tracks.id_switches}


def _mean_se(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:+.3f}"
    return f"{statistics.mean(values):+.3f} ± {statistics.stdev(values) / math.sqrt(len(values)):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", type=Path, nargs="+", help="the first is the reference")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "people_ab")
    args = parser.parse_args()
    size = (args.width, args.height)
    rows: list[list[dict]] = [[] for _ in args.checkouts]  # by position: a checkout given twice is a null check
    for seed in args.seeds:
        folder = (args.out / f"{seed}_{args.duration:g}s_{args.width}x{args.height}").resolve()
        render(seed, args.duration, size, folder)
        for k, checkout in enumerate(args.checkouts):
            code = TRACK.format(repo=str(checkout.resolve()), folder=str(folder), camera=behaviour.CAMERA,
                                start=behaviour.START.isoformat(), tag=f"c{k}")
            done = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c", code], cwd=checkout,
                                  capture_output=True, text=True, check=True)
            row = score(folder, f"c{k}") | json.loads(done.stdout.strip().splitlines()[-1]) | {"seed": seed}
            row["cpu_per_minute"] = row["cpu_s"] / args.duration * 60
            rows[k].append(row)
            print(f"seed {seed} {checkout}: zone visits {row['recall']:.3f} / {row['precision']:.3f},"
                  f" dwell MAE {row['dwell_mae']:.2f} s, loitering {row['loitering_found']} of {row['loitering_true']}"
                  f" ({row['loitering_raised']} raised), footfall error {row['footfall_error']:.2f},"
                  f" MOTA {row['mota']:.3f}, IDF1 {row['idf1']:.3f}, {row['id_switches']} ID switches,"
                  f" tracking {row['cpu_per_minute']:.1f} CPU-s per footage minute", flush=True)
    reference = rows[0]
    for k, (checkout, done) in enumerate(zip(args.checkouts, rows)):
        found = sum(r["loitering_found"] for r in done)
        raised = sum(r["loitering_raised"] for r in done)
        true_events = sum(r["loitering_true"] for r in done)
        print(f"\n{checkout} over {len(done)} seeds: loitering {found} of {true_events} found, {raised} raised")
        for key in FIGURES:
            values = [r[key] for r in done]
            line = f"  {key}: {statistics.mean(values):.3f}"
            if len(values) > 1:
                line += f" ± sd {statistics.stdev(values):.3f}"
            if k:
                paired = [r[key] - q[key] for r, q in zip(done, reference)]
                line += f"; minus the first, paired: {_mean_se(paired)} (± s.e.)"
            print(line)


if __name__ == "__main__":
    main()
