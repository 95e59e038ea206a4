"""People tracking benchmark: fresh-seed synthetic supermarket footage, and the real one-by-one clip.

For each seed (none of them used by the tests or for tuning: tests use 11-13, tuning used
101-103), one camera's footage is rendered (1280x720, 15 fps, H.264, sensor noise, lighting
steps, a shopper standing still for minutes), `track_people` runs on the MP4 and the tracks
are scored against the true boxes: detection recall / precision (IoU >= 0.5, ground truth less
than 30% visible ignored), MOTA, IDF1, ID switches, distinct tracks vs people; plus the
real-time factor of tracking (decode included; wall clock, and per CPU second, which a shared
machine's load does not distort), decoding alone for comparison, and the peak memory. Then the
spread over seeds. Last, the real clip (people entering a room one by one: 6 people, counted
by eye from frames every 4 s) is tracked and its distinct tracks are counted.

    .venv/bin/python bench/bench_people.py --seeds 2001 2002 2003 --duration 300
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from watershop_dagster.fixtures import fixtures_dir
from watershop_dagster.people import PeopleSettings, track_people
from watershop_dagster.people.evaluation import score_tracks
from watershop_dagster.synthetic import supermarket
from watershop_dagster.vision.decode import iter_frames

REAL_CLIP = "video/one-by-one-person-detection.mp4"
REAL_CLIP_PEOPLE = 6  # counted by eye (frames every 4 s; see tests/test_people_real.py)
START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_seed(seed: int, duration_s: float, max_fps: float | None, folder: Path, decode_baseline: bool = False) -> dict:
    scene = supermarket.scene_for("bench", 0, START, duration_s, seed)
    path = folder / f"supermarket-{seed}.mp4"
    began = time.perf_counter()
    supermarket.render_scene(scene, path, duration_s)
    render_s = time.perf_counter() - began
    truth = supermarket.scene_truth(scene, duration_s)
    decode_cpu_s = None
    if decode_baseline:
        cpu = time.process_time()
        for _ in iter_frames(path):
            pass
        decode_cpu_s = time.process_time() - cpu
    began, cpu = time.perf_counter(), time.process_time()
    observations = track_people(path, "bench", START, PeopleSettings(max_fps=max_fps))
    track_s, track_cpu_s = time.perf_counter() - began, time.process_time() - cpu
    score = score_tracks(observations, truth.boxes, START, scene.fps, max_fps=max_fps)
    stills = sum(s.still for s in scene.shoppers)
    print(f"seed {seed}: {score.line()}  |  {duration_s / track_s:.1f}x real time wall ({track_s:.1f} s), "
          f"{duration_s / track_cpu_s:.1f}x per CPU second ({track_cpu_s:.1f} CPU s), render {render_s:.0f} s, "
          f"{stills} still shopper(s), peak {_peak_mb():.0f} MB", flush=True)  # fmt: skip
    if decode_cpu_s is not None:
        print(f"  decoding alone (vision.decode.iter_frames): {duration_s / decode_cpu_s:.1f}x per CPU second "
              f"({decode_cpu_s:.1f} CPU s) - the floor any per-frame pipeline shares", flush=True)  # fmt: skip
    path.unlink(missing_ok=True)
    return {"score": score, "rtf": duration_s / track_s, "rtf_cpu": duration_s / track_cpu_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2001, 2002, 2003])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of footage per seed (>= 290 for a still shopper)")
    parser.add_argument("--max-fps", type=float, default=15.0, help="frames processed per second (camera: 15)")
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()

    print(f"people tracking, 1280x720 15 fps, {args.duration:.0f} s per seed, max {args.max_fps:g} processed fps")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_people_") as tmp:
        for seed in args.seeds:
            results.append(run_seed(seed, args.duration, args.max_fps, Path(tmp), decode_baseline=not results))
    if len(results) > 1:
        print("spread over seeds (min / median / max):")
        for label, get in (
            ("recall", lambda r: r["score"].recall),
            ("precision", lambda r: r["score"].precision),
            ("MOTA", lambda r: r["score"].mota),
            ("IDF1", lambda r: r["score"].idf1),
            ("ID switches", lambda r: r["score"].id_switches),
            ("tracks / people", lambda r: r["score"].tracks / max(1, r["score"].people)),
            ("real-time (wall)", lambda r: r["rtf"]),
            ("real-time (CPU)", lambda r: r["rtf_cpu"]),
        ):
            values = [get(r) for r in results]
            print(f"  {label:17s} {min(values):7.3f} / {statistics.median(values):7.3f} / {max(values):7.3f}")

    if not args.skip_real:
        clip = fixtures_dir() / REAL_CLIP
        if not clip.exists():
            print(f"real clip: skipped ({clip} not found; set WATERSHOP_FIXTURES)")
        else:
            began = time.perf_counter()
            observations = track_people(clip, "room", START, PeopleSettings(max_fps=args.max_fps))
            took = time.perf_counter() - began
            tracks = observations["track_id"].n_unique()
            print(f"real clip {clip.name}: {tracks} distinct person tracks vs {REAL_CLIP_PEOPLE} people seen, "
                  f"{139.4 / took:.1f}x real time (768x432 10 fps)")  # fmt: skip
    print(f"peak memory {_peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
