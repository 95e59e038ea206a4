"""Identity on person tracks: how many people tracks a face names, and how often correctly.

For each seed (fresh: the tests use none of them), a water-shop counter day is rendered (gallery
faces on drawn bodies, visitors overlapping at the counter) for a camera with `people: true`; then,
as `watershop run` orders them, vision (faces), identity (registry) and the behaviour camera-day
run on it. Each person track is matched to the ground-truth visit it overlaps most in time
(tracks overlapping no visit for at least half their life are left out: noise); each registry
identity is mapped to the true person most of its tracks belong to. Printed per seed and as the
spread over seeds:

* named: share of true-person tracks that got an identity (a face must be seen on the track);
* correct: share of named tracks whose identity maps to the track's true person;
* people named: share of true visitors with at least one named track;
* speed per CPU second of the face pass, the people pass and both (footage with faces, so the
  face-only pipeline's factor stands beside the people + faces one on the same file).

    .venv/bin/python bench/bench_behaviour_identity.py --seeds 4001 4002 4003 --duration 300 [--width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
from datetime import date, time
from pathlib import Path

import polars as pl
import yaml

from watershop_dagster import catalog, lake
from watershop_dagster.behaviour.partition import process_behaviour_day
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.identity.pipeline import build_customer_registry
from watershop_dagster.synthetic.footage import write_day
from watershop_dagster.vision.partition import process_camera_day

DAY = date(2025, 3, 5)
CAMERA = "counter"
VISITS_PER_HOUR = 60.0


def _track_truth(tracks: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Each track with the true person whose visit it overlaps most (null when under half its life)."""
    pairs = tracks.join(truth.select("person", "entry_utc", "exit_utc"), how="cross").with_columns(
        overlap=(pl.min_horizontal("end_ts", "exit_utc") - pl.max_horizontal("start_ts", "entry_utc"))
        .dt.total_microseconds().clip(lower_bound=0),
        life=(pl.col("end_ts") - pl.col("start_ts")).dt.total_microseconds(),
    )
    best = pairs.sort("overlap", descending=True).group_by("track_id", maintain_order=True).first()
    return best.with_columns(
        person=pl.when(pl.col("overlap") * 2 >= pl.col("life")).then(pl.col("person")).otherwise(None))


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_seed(seed: int, duration: float, size: tuple[int, int], folder: Path) -> dict:
    (folder / CONFIG_FILENAME).write_text(yaml.safe_dump({
        "partitions_start": "2025-01-01",
        "shops": [{"id": "water", "timezone": "UTC", "opening_time": "10:00:00",
                   "cameras": {CAMERA: {"people": True}}}]}))
    config = load_config(folder / CONFIG_FILENAME)
    truth = write_day(config.footage_root, config.shop("water"), CAMERA, DAY, start=time(10, 0),
                      duration_s=duration, visits_per_hour=VISITS_PER_HOUR, counter_s=(20, 40), size=size, seed=seed)
    faces_cpu = _cpu_s()
    process_camera_day(config, "water", CAMERA, DAY, workers=1)
    faces_cpu = _cpu_s() - faces_cpu
    build_customer_registry(config, "water", DAY)
    people_cpu = _cpu_s()
    process_behaviour_day(config, "water", CAMERA, DAY)
    people_cpu = _cpu_s() - people_cpu
    tracks = lake.read_dataset(config.lake_root, catalog.PERSON_TRACKS, shop_id="water", date=DAY, camera=CAMERA)
    judged = _track_truth(tracks, truth).drop_nulls("person")
    named = judged.drop_nulls("identity")
    owner = (named.group_by("identity", "person").len().sort("len", descending=True)
             .group_by("identity", maintain_order=True).first().select("identity", owner="person"))
    correct = named.join(owner, on="identity").filter(pl.col("owner") == pl.col("person")).height
    return {
        "seed": seed, "visitors": truth["person"].n_unique(), "tracks": tracks.height, "judged": judged.height,
        "named": named.height / judged.height if judged.height else 0.0,
        "correct": correct / named.height if named.height else 0.0,
        "people_named": named["person"].n_unique() / truth["person"].n_unique() if truth.height else 0.0,
        "faces_rtf_cpu": duration / faces_cpu, "people_rtf_cpu": duration / people_cpu,
        "both_rtf_cpu": duration / (faces_cpu + people_cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[4001, 4002, 4003])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of counter footage per seed")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            row = run_seed(seed, args.duration, (args.width, args.height), Path(tmp))
        rows.append(row)
        print(f"seed {seed}: {row['visitors']} visitors, {row['tracks']} person tracks ({row['judged']} on a visitor);"
              f" named {row['named']:.2f}, correct {row['correct']:.2f}, visitors named {row['people_named']:.2f};"
              f" per CPU second: faces {row['faces_rtf_cpu']:.1f}x, people {row['people_rtf_cpu']:.1f}x,"
              f" both {row['both_rtf_cpu']:.1f}x")
    for key in ("named", "correct", "people_named", "faces_rtf_cpu", "people_rtf_cpu", "both_rtf_cpu"):
        values = [row[key] for row in rows]
        spread = f" (min {min(values):.2f}, max {max(values):.2f})" if len(values) > 1 else ""
        print(f"{key}: mean {statistics.mean(values):.2f}{spread}")
    print(f"{args.width}x{args.height}; peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
