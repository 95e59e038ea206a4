"""How well Frigate's messages (`listen`) and its HTTP API (`pull`) recover a generated supermarket's
zone visits, on fresh seeds (10_000 up; the tests use seeds below 1_000):

  listen  MQTT new/update/end messages, shuffled (arrival order must not matter)
  pull    /api/events with path points sampled where the person moved; legs under 1 s get no point

A true visit is found when a lake visit of the same object and zone starts within 1 s of it; dwell
error is over found visits. Printed per source: recall, precision, worst and mean dwell error as
mean ± sd (min-max) over --seeds runs, and the share of true visits under 3 s.

    .venv/bin/python bench/bench_frigate_accuracy.py [--seeds 5] [--people 300]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402

from tests.frigate_helpers import CAMERAS, zone_points  # noqa: E402
from tests.test_frigate_events import START, landed, zones_of  # noqa: E402
from watershop_dagster.frigate.events import build_camera_day  # noqa: E402
from watershop_dagster.frigate.simulate import api_event, supermarket_replay  # noqa: E402

SEED_BASE = 10_000


def score(truth, visits) -> tuple[float, float, float, float]:
    found = [(r["track_id"], r["zone"], r["enter_ts"].timestamp(), r["dwell_s"]) for r in visits.iter_rows(named=True)]
    unused, errors = list(found), []
    for visit in truth:
        hit = next((f for f in unused if f[0] == visit.event_id and f[1] == visit.zone
                    and abs(f[2] - visit.enter) <= 1.0), None)
        if hit:
            unused.remove(hit)
            errors.append(abs(hit[3] - (visit.exit - visit.enter)))
    matched = len(errors)
    return (matched / max(len(truth), 1), matched / max(len(found), 1), max(errors, default=0.0),
            statistics.fmean(errors) if errors else 0.0)


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--people", type=int, default=300)
    args = parser.parse_args()
    points = {**zone_points(zones_of("door")), **zone_points(zones_of("aisle"))}
    results: dict[str, list[tuple]] = {"listen": [], "pull": []}
    short = []
    for seed in range(SEED_BASE, SEED_BASE + args.seeds):
        replay = supermarket_replay(CAMERAS, START, people=args.people, seed=seed)
        shuffled = replay.messages[:]
        random.Random(seed).shuffle(shuffled)
        events = [api_event(person, points) for person in replay.persons]
        short.append(sum(v.exit - v.enter < 3 for v in replay.visits) / len(replay.visits))
        for source in results:
            truth, visits = [], []
            for camera in CAMERAS:
                if source == "listen":
                    messages = landed([m for m in shuffled if json.loads(m)["after"]["camera"] == camera])
                else:
                    messages = landed([json.dumps(e) for e in events if e["camera"] == camera], topic="api/events")
                day = build_camera_day(messages, camera, zones_of(camera), {}, "bench", (1280, 720))
                truth += [v for v in replay.visits if v.camera == camera]
                visits.append(day.zone_visits)
            results[source].append(score(truth, pl.concat(visits)))
    print(f"{args.seeds} seeds x {args.people} people; true visits under 3 s: {spread(short)}")
    for source, runs in results.items():
        recall, precision, worst, mean = zip(*runs)
        print(f"{source:6} recall {spread(list(recall))}  precision {spread(list(precision))}")
        print(f"{'':6} dwell error worst {spread(list(worst))} s  mean {spread(list(mean))} s")


if __name__ == "__main__":
    main()
