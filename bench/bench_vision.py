"""Vision benchmark: an hour of 1280x720 15 fps synthetic shop footage on this machine's cores.

Renders the footage (two 30-minute files of one camera-day, ~10 visits per hour, faces from the shared
fixture gallery when present), then measures, in one run:
  * the Watershop pipeline (motion-gated HOG + tracks + selective embeddings, 2 workers): wall time,
    real-time factor, peak memory, and recall = share of true visits with at least one good embedding
    (quality >= 0.5, nearest gallery person is the true one, distance < 0.6, inside the visible span);
  * the original scripts' naive way (a frame every second, full-frame HOG + encoding of every face),
    each file in its own process, on the same footage: wall time, recall, and the speed ratio.

    .venv/bin/python bench/bench_vision.py [--minutes 60] [--visits-per-hour 10] [--skip-naive]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from datetime import time as clock
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from watershop_dagster.config import ShopConfig, VisionConfig  # noqa: E402
from watershop_dagster.fixtures import fixtures_dir  # noqa: E402

DAY = date(2025, 6, 2)
GOOD_QUALITY = 0.5
MATCH_DISTANCE = 0.6


def render(out: Path, minutes: float, visits_per_hour: float, gallery) -> tuple[list, pl.DataFrame]:
    from watershop_dagster.synthetic.footage import write_day
    from watershop_dagster.vision.footage import discover_footage

    shop = ShopConfig(id="bench", timezone="Asia/Kolkata", cameras=["counter"])
    half = minutes * 30.0
    truths = [
        write_day(out, shop, "counter", DAY, gallery, layout="plain", start=clock(10, 0), duration_s=half,
                  visits_per_hour=visits_per_hour, size=(1280, 720), fps=15, workers=2, seed=11),
        write_day(out, shop, "counter", DAY, gallery, layout="plain", start=clock(10, int(half // 60)),
                  duration_s=half, visits_per_hour=visits_per_hour, size=(1280, 720), fps=15, workers=2, seed=12),
    ]
    files, bad = discover_footage(out, shop, DAY)
    assert not bad and len(files) == 2, (files, bad)
    return files, pl.concat(truths).filter(pl.col("role") == "customer")


def gallery_encodings(gallery) -> tuple[np.ndarray, list[str]]:
    import face_recognition

    vectors, names = [], []
    for person, crops in gallery.items():
        for crop in crops:
            for encoding in face_recognition.face_encodings(crop):
                vectors.append(encoding)
                names.append(person)
    return np.asarray(vectors, np.float32), names


def visit_recall(truth: pl.DataFrame, stamps: list, vectors: np.ndarray, keep: np.ndarray,
                 reference: np.ndarray, names: list[str]) -> float:
    if len(vectors) == 0:
        return 0.0
    distances = np.linalg.norm(vectors[:, None, :] - reference[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    who = np.array([names[i] for i in nearest])
    good = keep & (distances.min(axis=1) < MATCH_DISTANCE)
    stamps = np.array(stamps, dtype="datetime64[us]")
    hits = 0
    for visit in truth.iter_rows(named=True):
        start = np.datetime64(visit["entry_utc"].replace(tzinfo=None), "us")
        end = np.datetime64(visit["counter_end_utc"].replace(tzinfo=None), "us")
        inside = (stamps >= start) & (stamps <= end) & good & (who == visit["person"])
        hits += bool(inside.any())
    return hits / max(truth.height, 1)


def _naive(footage):
    from naive_vision import naive_process_video  # bench/ is this script's folder

    return naive_process_video(footage, interval_s=1.0)


def peak_rss_mb() -> float:
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--visits-per-hour", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "vision")
    args = parser.parse_args()

    from watershop_dagster.synthetic.gallery import load_gallery
    from watershop_dagster.vision.pipeline import process_footage

    faces = fixtures_dir() / "faces"
    gallery = load_gallery(faces if faces.is_dir() else None)
    started = time.perf_counter()
    files, truth = render(args.out, args.minutes, args.visits_per_hour, gallery)
    render_s = time.perf_counter() - started
    reference, names = gallery_encodings(gallery)
    footage_s = args.minutes * 60.0

    started = time.perf_counter()
    ours = process_footage(files, VisionConfig(), workers=args.workers)
    ours_s = time.perf_counter() - started
    ours_peak = peak_rss_mb()
    emb = ours.face_embeddings
    vectors = np.asarray(emb["embedding"].to_list(), np.float32).reshape(emb.height, -1)
    ours_recall = visit_recall(truth, emb["ts_utc"].to_list(), vectors,
                               (emb["quality"] >= GOOD_QUALITY).to_numpy(), reference, names)

    print(f"Vision benchmark: {args.minutes:g} min of 1280x720 15 fps H.264, {truth.height} customer visits "
          f"({args.visits_per_hour:g}/h), gallery {'shared fixtures' if faces.is_dir() else 'built-in'} "
          f"({len(gallery)} people); rendering took {render_s:.0f} s")
    print(f"  watershop pipeline ({args.workers} workers): {ours_s:.1f} s wall, {footage_s / ours_s:.1f}x real time, "
          f"peak RSS {ours_peak:.0f} MB (max of parent and any worker)")
    print(f"    frames decoded {int(ours.stats.get('frames_decoded', 0)):,}, scored {int(ours.stats.get('frames_scored', 0)):,}, "
          f"searched {int(ours.stats.get('frames_searched', 0)):,}; tracks {ours.face_tracks.height}, "
          f"embeddings {emb.height}")
    print(f"    slice starts searched whole {int(ours.stats.get('start_searches', 0))} "
          f"({ours.stats.get('start_search_cpu_s', 0.0):.1f} CPU-s of {ours.stats.get('cpu_s', 0.0):.1f}, "
          f"{int(ours.stats.get('start_search_faces', 0))} faces found); looks where a face was lost "
          f"{int(ours.stats.get('lost_face_looks', 0))}")
    print(f"    visits with >= 1 good embedding: {ours_recall:.1%}")
    if args.skip_naive:
        return
    started = time.perf_counter()
    with ProcessPoolExecutor(len(files)) as pool:
        naive = list(pool.map(_naive, files))
    naive_s = time.perf_counter() - started
    vectors = np.concatenate([n.embeddings for n in naive])
    stamps = [t for n in naive for t in n.ts_utc]
    naive_recall = visit_recall(truth, stamps, vectors, np.ones(len(vectors), bool), reference, names)
    print(f"  naive 1 frame/s full-frame HOG ({len(files)} processes): {naive_s:.1f} s wall, "
          f"{footage_s / naive_s:.1f}x real time, {sum(n.n_frames for n in naive):,} frames, {len(vectors):,} embeddings")
    print(f"    visits with >= 1 matching embedding: {naive_recall:.1%}")
    print(f"  speed-up over naive: {naive_s / ours_s:.1f}x; embeddings computed: {emb.height} vs {len(vectors):,}")


if __name__ == "__main__":
    main()
