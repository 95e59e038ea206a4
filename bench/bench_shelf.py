"""Falling-item benchmark: recall, precision and false alarms per camera-hour of the shelf detector on
fresh synthetic shelf footage, with the spread over seeds, and its speed against real time.

Each seed films one shelf camera (`watershop_dagster.synthetic.shelf`: 640x360, 20 fps, H.264
crf 26) for `--minutes` with `--drops` items falling (varied sizes, colours, heights; some bounce
and roll) among distractors: a shopper reaching in, taking an item and putting it back; people
and carts passing; a swinging sign; lamp steps and flicker; sensor noise. The detector was tuned
on seeds 1 and 2; the default seeds here (101...) were never looked at while tuning.

A detected fall matches a true drop of the same zone when its release time is within ±1 s
(`--tolerance`), one-to-one (nearest first); unmatched detections are false alarms. Speed is
footage seconds per wall second, and per CPU second of this process, of `detect_falls_in_file`
(decoding every frame included), and of decoding alone, on this machine as loaded at the time (2 cores shared with other work).
With `WATERSHOP_FIXTURES` set, the real clip video/bottle-detection.mp4 (bottles on a line, no
falls) is run with one shelf zone over the whole frame: it must give zero events.

    .venv/bin/python bench/bench_shelf.py [--seeds 101 102 103 104 105] [--minutes 8] [--drops 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from watershop_dagster.shelf.scan import detect_falls_in_file
from watershop_dagster.shelf.settings import ShelfConfig
from watershop_dagster.synthetic import shelf as synthetic
from watershop_dagster.vision.decode import iter_frames
from watershop_dagster.zones.config import CameraSettings, resolve_zones

CAMERA = "aisle3"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BASELINE = "13-14 of 16 drops found, 3-8 false alarms (the issue's untuned rule)"


def match(truth_s: list[float], found_s: list[float], tolerance: float) -> tuple[int, list[float]]:
    """(true positives, |release error| of each match), one-to-one, nearest pairs first."""
    pairs = sorted((abs(f - t), i, j) for i, t in enumerate(truth_s) for j, f in enumerate(found_s) if abs(f - t) <= tolerance)
    used_t, used_f, errors = set(), set(), []
    for error, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            errors.append(error)
    return len(errors), errors


def run_seed(seed: int, minutes: float, drops: int, tolerance: float, folder: Path) -> dict:
    duration = minutes * 60
    scale = minutes / 4  # distractors per 4 minutes as in the tuning footage
    plan = synthetic.plan_shelf(duration, seed, CAMERA, drops=drops, reaches=round(6 * scale), walkers=round(6 * scale),
                                carts=round(3 * scale), light_steps=round(4 * scale), flicker_bursts=round(3 * scale))
    path = folder / f"shelf_{seed}.mp4"
    truth = synthetic.write_shelf_footage(path, CAMERA, START, duration, seed, plan=plan)
    zones = resolve_zones(CAMERA, CameraSettings.model_validate(synthetic.camera_config([CAMERA])[CAMERA]))
    started, cpu_started = time.perf_counter(), time.process_time()
    found = detect_falls_in_file(path, zones, ShelfConfig())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    started = time.perf_counter()
    for _ in iter_frames(path, threads=1):
        pass
    decode_wall = time.perf_counter() - started
    truth_s = [(t - START).total_seconds() for t in truth["release_utc"].to_list()]
    tp, errors = match(truth_s, [e.release_s for e in found.events], tolerance)
    false_alarms = len(found.events) - tp
    return {
        "seed": seed, "drops": len(truth_s), "found": len(found.events), "tp": tp, "fa": false_alarms,
        "recall": tp / len(truth_s), "precision": tp / len(found.events) if found.events else 1.0,
        "fa_per_hour": false_alarms / (duration / 3600), "release_error_s": float(np.mean(errors)) if errors else float("nan"),
        "speed": found.footage_s / wall, "cpu_speed": found.footage_s / cpu, "decode_speed": found.footage_s / decode_wall,
    }


def real_clip_events() -> int | None:
    fixtures = os.environ.get("WATERSHOP_FIXTURES")
    clip = Path(fixtures) / "video" / "bottle-detection.mp4" if fixtures else None
    if clip is None or not clip.exists():
        return None
    settings = CameraSettings.model_validate({"zones": {"line": {"coordinates": "0,0,1,0,1,1,0,1", "kind": "shelf"}}})
    return len(detect_falls_in_file(clip, resolve_zones("line", settings), ShelfConfig()).events)


def spread(rows: list[dict], key: str) -> str:
    values = [row[key] for row in rows]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103, 104, 105])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--drops", type=int, default=16)
    parser.add_argument("--tolerance", type=float, default=1.0, help="release-time tolerance, s")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = run_seed(seed, args.minutes, args.drops, args.tolerance, Path(tmp))
            rows.append(row)
            print(f"seed {row['seed']}: {row['tp']}/{row['drops']} drops found, {row['fa']} false alarm(s) "
                  f"({row['fa_per_hour']:.1f}/camera-hour), release error {row['release_error_s']:.2f} s, "
                  f"detector {row['speed']:.1f}x real time ({row['cpu_speed']:.1f}x per CPU second; "
                  f"decoding alone {row['decode_speed']:.1f}x)", flush=True)
    hours = len(rows) * args.minutes / 60
    print(f"\n{len(rows)} fresh seeds, {hours:.2f} camera-hours, {sum(r['drops'] for r in rows)} drops "
          f"(baseline: {BASELINE})")
    print(f"recall     {spread(rows, 'recall')}   (target >= 0.9 within ±{args.tolerance:g} s of release)")
    print(f"precision  {spread(rows, 'precision')}")
    print(f"false alarms per camera-hour  {spread(rows, 'fa_per_hour')}   (target <= 1)")
    print(f"release error s (matched)     {spread(rows, 'release_error_s')}")
    print(f"speed x real time             {spread(rows, 'speed')}   (target >= 30; load average {os.getloadavg()[0]:.1f})")
    print(f"speed x per CPU second        {spread(rows, 'cpu_speed')}   (the honest figure on a shared machine)")
    print(f"decoding alone x real time    {spread(rows, 'decode_speed')}")
    events = real_clip_events()
    print("bottle-detection.mp4: " + ("skipped (WATERSHOP_FIXTURES not set)" if events is None
                                      else f"{events} event(s) (must be 0)"))


if __name__ == "__main__":
    main()
