"""Zone analytics benchmark: speed on a camera-day's worth of observations, and accuracy of zone
visits, dwell, loitering and footfall against simulated ground truth.

This measures the analytics alone (watershop_dagster.zones), from person observations with the
imperfections a tracker gives: box jitter (`--jitter`, relative) and dropouts (a track unobserved
for 0.2-0.7 s, `--dropouts` per person-minute). People arrive at the entrance (Poisson,
`--people-per-hour`), walk at 0.08 frame-widths/s to 2-4 zones, stand there (exponential dwell,
mean 20 s; one in five stands 60-180 s at the promo table), return to the entrance and vanish.
The true visits come from the true bottom-centre path (every frame, no inertia, no debounce).

Figures: zone-visit recall/precision (a predicted visit matches a true visit of the same person
and zone when interval IoU >= 0.5, one-to-one), dwell MAE over matched visits, loitering
recall/precision (by person and zone), footfall in/out vs the people simulated, and the time of
`analyse_observations` with rows/s and the extrapolated time for 8 cameras x 14 h.

    .venv/bin/python bench/bench_zones.py [--hours 1] [--fps 15] [--people-per-hour 120] [--seed 11]
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl

from watershop_dagster.zones import PERSON_OBSERVATIONS, Zone, analyse_observations
from watershop_dagster.zones.geometry import points_in_polygon

CAMERA = "floor"
W, H = 1280, 720
SPEED = 0.08  # frame widths per second
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _rect(name, x0, y0, x1, y1, kind, loitering_time=0.0) -> Zone:
    return Zone(CAMERA, name, kind, None, 3, loitering_time,
                np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float))


ZONES = [
    _rect("entrance", 0.0, 0.75, 0.2, 1.0, "entrance"),
    _rect("shelf_a", 0.25, 0.15, 0.45, 0.4, "shelf"),
    _rect("shelf_b", 0.55, 0.15, 0.75, 0.4, "shelf"),
    _rect("promo", 0.3, 0.55, 0.5, 0.75, "promo", loitering_time=45),
    _rect("checkout", 0.75, 0.6, 0.98, 0.95, "checkout"),
]
DOOR = np.array([0.08, 0.9])


def _person_path(rng, start_s: float):
    """Waypoints (x, y) and the times the person reaches and leaves each."""
    stops = rng.choice(np.arange(1, len(ZONES)), size=rng.integers(2, 5), replace=False)
    points, times, t, here = [DOOR], [start_s], start_s, DOOR
    t += rng.uniform(1.5, 3)  # stands in the doorway a moment
    points.append(DOOR)
    times.append(t)
    for index in stops:
        zone = ZONES[index]
        lo, hi = zone.polygon.min(axis=0), zone.polygon.max(axis=0)
        target = rng.uniform(lo + 0.2 * (hi - lo), hi - 0.2 * (hi - lo))
        t += np.linalg.norm(target - here) / SPEED
        points.append(target)
        times.append(t)
        dwell = rng.uniform(60, 180) if zone.name == "promo" and rng.random() < 0.2 else rng.exponential(20) + 2
        t += dwell
        points.append(target)
        times.append(t)
        here = target
    t += np.linalg.norm(DOOR - here) / SPEED
    points.append(DOOR)
    times.append(t)
    t += rng.uniform(1.5, 3)
    points.append(DOOR)
    times.append(t)
    return np.array(points), np.array(times)


def simulate(hours: float, fps: float, people_per_hour: float, jitter: float, dropouts: float, seed: int):
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(3600 / people_per_hour, size=int(hours * people_per_hour * 2)))
    arrivals = arrivals[arrivals < hours * 3600]
    frames, truth = [], []
    for person, start in enumerate(arrivals):
        points, times = _person_path(rng, start)
        t = np.arange(np.ceil(times[0] * fps), np.floor(times[-1] * fps)) / fps
        x, y = np.interp(t, times, points[:, 0]), np.interp(t, times, points[:, 1])
        track_id = f"p{person}"
        for zone in ZONES:
            inside = points_in_polygon(x, y, zone.polygon)
            edges = np.flatnonzero(np.diff(np.r_[0, inside.astype(int), 0]))
            for a, b in zip(edges[::2], edges[1::2]):
                truth.append((track_id, zone.name, t[a], t[b - 1]))
        seen = np.ones(t.size, dtype=bool)
        for _ in range(rng.poisson(dropouts * (t[-1] - t[0]) / 60)):
            gap_start = rng.integers(0, t.size)
            seen[gap_start:gap_start + int(rng.uniform(0.2, 0.7) * fps)] = False
        seen[0] = seen[-1] = True  # the track starts and ends where the person does
        ox = x[seen] + rng.normal(0, jitter, seen.sum())
        oy = y[seen] + rng.normal(0, jitter, seen.sum())
        bw, bh = 0.06 * W, 0.35 * H
        frames.append(pl.DataFrame({
            "camera": CAMERA, "track_id": track_id,
            "ts": (T0.timestamp() + t[seen]) * 1e6,
            "x1": ox * W - bw / 2, "y1": oy * H - bh, "x2": ox * W + bw / 2, "y2": oy * H,
            "frame_width": W, "frame_height": H, "identity": None, "score": 0.8,
        }))
    observations = pl.concat(frames).with_columns(
        pl.col("ts").cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    ).select([pl.col(c).cast(t) for c, t in PERSON_OBSERVATIONS.items()])
    truth_df = pl.DataFrame(truth, schema=["track_id", "zone", "start", "end"], orient="row")
    return observations, truth_df, len(arrivals)


def match(predicted: pl.DataFrame, truth: pl.DataFrame):
    """One-to-one matches (IoU >= 0.5) per person and zone: (matched pairs, n_pred, n_true)."""
    pred = predicted.select(
        "track_id", "zone",
        start=(pl.col("enter_ts").dt.epoch("us") / 1e6 - T0.timestamp()),
        end=(pl.col("exit_ts").dt.epoch("us") / 1e6 - T0.timestamp()))
    pairs = pred.with_row_index("p").join(truth.with_row_index("g"), on=["track_id", "zone"], suffix="_true")
    inter = (pl.min_horizontal("end", "end_true") - pl.max_horizontal("start", "start_true")).clip(lower_bound=0)
    union = pl.max_horizontal("end", "end_true") - pl.min_horizontal("start", "start_true")
    pairs = pairs.with_columns(iou=pl.when(union > 0).then(inter / union).otherwise(1.0)).filter(pl.col("iou") >= 0.5)
    used_p, used_g, matched = set(), set(), []
    for row in pairs.sort("iou", descending=True).iter_rows(named=True):
        if row["p"] not in used_p and row["g"] not in used_g:
            used_p.add(row["p"])
            used_g.add(row["g"])
            matched.append((row["end"] - row["start"], row["end_true"] - row["start_true"]))
    return matched, pred.height, truth.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--people-per-hour", type=float, default=120.0)
    parser.add_argument("--jitter", type=float, default=0.004)
    parser.add_argument("--dropouts", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    observations, truth, people = simulate(args.hours, args.fps, args.people_per_hour, args.jitter,
                                           args.dropouts, args.seed)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = analyse_observations(observations, ZONES)
    elapsed = time.perf_counter() - started

    matched, n_pred, n_true = match(result.visits, truth)
    recall, precision = len(matched) / max(n_true, 1), len(matched) / max(n_pred, 1)
    dwell_mae = float(np.mean([abs(p - g) for p, g in matched])) if matched else float("nan")
    promo = next(z for z in ZONES if z.name == "promo")
    long_stays = (pl.col("zone") == "promo") & (pl.col("end") - pl.col("start") >= promo.loitering_time)
    true_loiter = set(truth.filter(long_stays).select("track_id", "zone").iter_rows())
    got_loiter = set(result.loitering.select("track_id", "zone").iter_rows())
    hits = len(true_loiter & got_loiter)
    counts = result.footfall.group_by("direction").len().rows()
    footfall = dict(counts)

    day_seconds = elapsed / args.hours * 14
    print(f"observations        {observations.height:,} rows ({args.hours} h, {args.fps} fps, {people} people)")
    print(f"analyse_observations {elapsed:.2f} s = {observations.height / elapsed:,.0f} rows/s; "
          f"camera-day (14 h) ~{day_seconds:.1f} s, 8 cameras ~{8 * day_seconds / 60:.1f} min on this machine")
    print(f"peak memory         {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          f"(whole process; {peak_before:.0f} MB before the analysis, with the simulation)")
    print(f"zone visits         recall {recall:.3f} precision {precision:.3f} "
          f"({len(matched)} matched / {n_true} true / {n_pred} predicted, IoU >= 0.5)")
    print(f"dwell MAE           {dwell_mae:.2f} s over matched visits")
    print(f"loitering (promo)   recall {hits / max(len(true_loiter), 1):.3f} "
          f"precision {hits / max(len(got_loiter), 1):.3f} ({len(true_loiter)} true, {len(got_loiter)} raised)")
    print(f"footfall            in {footfall.get('in', 0)} out {footfall.get('out', 0)} vs {people} people")


if __name__ == "__main__":
    main()
