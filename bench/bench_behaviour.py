"""Behaviour camera-day benchmark: the whole per-camera-day step as the Dagster asset runs it.

For each seed (fresh: not used by the tests, 3, or for tuning), one camera's supermarket footage
is rendered (default 1280x720, 15 fps, H.264, noise, lighting steps) into a temporary workspace
whose camera has the scene's zones, then `process_behaviour_day` discovers and probes it, tracks
people, attaches identities (none here: no face data), runs the zone analytics, writes every
behaviour dataset and the heatmap PNG. Printed per seed: footage seconds, wall and CPU seconds,
the real-time factor (footage seconds per wall second, and per CPU second, which a shared machine's
load does not distort), rows landed, and beside it the face pipeline alone (one worker) on the same
file, both as two passes (two decodes), and faces + people as the camera-day runs them: the vision
step decoding once for both and looking for faces only in the tracked persons' heads, then the
behaviour step taking its person tracks (checked to land the same behaviour rows as the two passes;
the face detections of both ways are counted: the shoppers drawn here have no faces, so both find
none, and `bench_behaviour_identity.py` measures the faces); and the zone visits against the scene's ground
truth (one-to-one per zone at interval IoU >= 0.5: recall, precision, dwell MAE, against the truth
built with the product's visit rule, and beside them against the raw frame-by-frame truth that
older figures used; footfall counts;
loitering events, matched the same way). Each clip has `--loiterers` shoppers (default 1) who stay in
a zone past its loitering_time (see supermarket.plan_shoppers), so loitering recall and precision
measure something.
Then the spread over seeds and the peak memory.

    .venv/bin/python bench/bench_behaviour.py --seeds 3001 3002 --duration 60
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import yaml

from watershop_dagster import catalog
from watershop_dagster.behaviour.partition import process_behaviour_day
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.synthetic import supermarket
from watershop_dagster.synthetic.footage import plain_path
from watershop_dagster.vision.footage import FootageFile
from watershop_dagster.vision.partition import process_camera_day
from watershop_dagster.vision.pipeline import process_footage

DAY = date(2025, 3, 4)
START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
CAMERA = "aisle"
FPS = 15
SHOPPERS_PER_MINUTE = 10.0
PAUSE_S = (3.0, 15.0)
LOITERERS = 1


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (vision may use worker processes)."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def visit_matches(predicted: pl.DataFrame, truth: pl.DataFrame) -> tuple[list[float], int, int]:
    """One-to-one matches per zone with interval IoU >= 0.5, best first (track ids are not the true
    people's): (dwell errors in seconds of the matched pairs, predicted visits, true visits)."""
    pred = predicted.select("zone", start="enter_ts", end="exit_ts").with_row_index("p")
    true = truth.select("zone", start="enter_ts", end="exit_ts").with_row_index("g")
    seconds = lambda column: pl.col(column).dt.epoch("us") / 1e6  # noqa: E731
    pairs = pred.join(true, on="zone", suffix="_true").with_columns(
        inter=(pl.min_horizontal(seconds("end"), seconds("end_true"))
               - pl.max_horizontal(seconds("start"), seconds("start_true"))).clip(lower_bound=0),
        union=pl.max_horizontal(seconds("end"), seconds("end_true"))
        - pl.min_horizontal(seconds("start"), seconds("start_true")),
        error=((seconds("end") - seconds("start")) - (seconds("end_true") - seconds("start_true"))).abs(),
    ).with_columns(iou=pl.when(pl.col("union") > 0).then(pl.col("inter") / pl.col("union")).otherwise(1.0))
    used_p, used_g, errors = set(), set(), []
    for row in pairs.filter(pl.col("iou") >= 0.5).sort("iou", descending=True).iter_rows(named=True):
        if row["p"] not in used_p and row["g"] not in used_g:
            used_p.add(row["p"])
            used_g.add(row["g"])
            errors.append(row["error"])
    return errors, pred.height, true.height


def loitering_intervals(events: pl.DataFrame) -> pl.DataFrame:
    """Loitering events (found or true) as zone intervals, to be matched like zone visits."""
    ends = pl.col("start_ts") + pl.duration(seconds=pl.col("dwell_s"))
    return events.select("zone", enter_ts="start_ts", exit_ts=ends)


def bench_scene(seed: int, duration: float, size: tuple[int, int], max_pause: float = PAUSE_S[1],
                loiterers: int = LOITERERS) -> supermarket.SupermarketScene:
    """The benchmark's clip of one seed: the aisle camera, SHOPPERS_PER_MINUTE shoppers with short
    stops (people fit a short clip), `loiterers` of them staying past a zone's loitering_time."""
    view = supermarket.camera_view(CAMERA, 0, seed)
    shoppers = supermarket.plan_shoppers(view, duration, seed, shoppers_per_minute=SHOPPERS_PER_MINUTE,
                                         still_shoppers=0, pause_s=(PAUSE_S[0], max_pause), loiterers=loiterers)
    return supermarket.SupermarketScene(view, shoppers, START, FPS, size,
                                        lighting=supermarket.plan_lighting(duration, seed, CAMERA))


def footfall_error(counted: dict[str, int], true: dict[str, int]) -> float:
    """Relative error of the entries counted ("in"), the figure footfall_hourly reports."""
    return abs(counted.get("in", 0) - true.get("in", 0)) / true["in"] if true.get("in") else 0.0


def run_seed(seed: int, duration: float, size: tuple[int, int], folder: Path, max_pause: float = PAUSE_S[1],
             loiterers: int = LOITERERS) -> dict:
    scene = bench_scene(seed, duration, size, max_pause, loiterers)
    view = scene.view
    supermarket.render_scene(scene, plain_path(folder / "landing" / "footage", CAMERA, START), duration)
    truth = supermarket.scene_truth(scene, duration)
    zones = truth.zone_config["cameras"]
    (folder / CONFIG_FILENAME).write_text(yaml.safe_dump({
        "partitions_start": "2025-01-01", "shops": [{"id": "market", "timezone": "UTC", "cameras": zones}]}))
    config = load_config(folder / CONFIG_FILENAME)
    wall, cpu = time.perf_counter(), _cpu_s()
    alone = process_behaviour_day(config, "market", CAMERA, DAY)  # no vision step yet: decodes the footage itself
    wall, cpu = time.perf_counter() - wall, _cpu_s() - cpu
    faces_cpu = _cpu_s()
    files = [FootageFile(plain_path(folder / "landing" / "footage", CAMERA, START), CAMERA, START)]
    faces = process_footage(files, config.vision, workers=1)  # what the vision step of a camera without people runs
    faces_cpu = _cpu_s() - faces_cpu
    one_pass_cpu, one_pass_wall = _cpu_s(), time.perf_counter()
    vision = process_camera_day(config, "market", CAMERA, DAY, workers=1)  # faces and people from one decode
    result = process_behaviour_day(config, "market", CAMERA, DAY)  # takes the people tracks from the vision step
    one_pass_cpu, one_pass_wall = _cpu_s() - one_pass_cpu, time.perf_counter() - one_pass_wall
    identical = all(result.outputs[d.name].equals(alone.outputs[d.name]) for d in catalog.BEHAVIOUR_OUTPUTS)
    errors, n_pred, n_true = visit_matches(result.outputs[catalog.ZONE_VISITS.name], truth.zone_visits)
    raw_truth = supermarket.frame_by_frame_visits(truth.boxes, view, size)  # what older figures were scored against
    raw_errors, _, n_raw = visit_matches(result.outputs[catalog.ZONE_VISITS.name], raw_truth)
    loiter_hits, loiter_n_pred, loiter_n_true = visit_matches(
        loitering_intervals(result.outputs[catalog.LOITERING_EVENTS.name]), loitering_intervals(truth.loitering))
    counted = result.outputs[catalog.FOOTFALL.name]["direction"].value_counts()
    true_counts = truth.footfall["direction"].value_counts()
    return {
        "recall": len(errors) / n_true if n_true else 1.0, "precision": len(errors) / n_pred if n_pred else 1.0,
        "dwell_mae": statistics.mean(errors) if errors else 0.0,
        "raw_recall": len(raw_errors) / n_raw if n_raw else 1.0,
        "raw_precision": len(raw_errors) / n_pred if n_pred else 1.0,
        "loiter_recall": len(loiter_hits) / loiter_n_true if loiter_n_true else 1.0,
        "loiter_precision": len(loiter_hits) / loiter_n_pred if loiter_n_pred else 1.0,
        "loiter_true": loiter_n_true, "loiter_pred": loiter_n_pred, "loiter_hits": len(loiter_hits),
        "footfall_error": footfall_error(dict(counted.iter_rows()), dict(true_counts.iter_rows())),
        "footfall": dict(counted.iter_rows()), "true_footfall": dict(true_counts.iter_rows()),
        "faces_rtf_cpu": result.footage_seconds / faces_cpu,
        "both_rtf_cpu": result.footage_seconds / (cpu + faces_cpu),  # people and faces: two passes over the file
        "one_pass_rtf_cpu": result.footage_seconds / one_pass_cpu,  # faces and people from one decode
        "one_pass_rtf_wall": result.footage_seconds / one_pass_wall,
        "one_pass_identical": identical,
        "faces_alone": faces.face_detections.height, "faces_one_pass": vision.result.face_detections.height,
        "seed": seed, "footage_s": result.footage_seconds, "wall_s": wall, "cpu_s": cpu,
        "rtf_wall": result.footage_seconds / wall, "rtf_cpu": result.footage_seconds / cpu,
        "people": len(scene.shoppers), "tracks": result.count(catalog.PERSON_TRACKS),
        "visits": result.count(catalog.ZONE_VISITS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3001, 3002])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of footage per seed")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--max-pause", type=float, default=PAUSE_S[1], help="longest stop in a zone (s)")
    parser.add_argument("--loiterers", type=int, default=LOITERERS, help="shoppers per clip who loiter in a zone")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            row = run_seed(seed, args.duration, (args.width, args.height), Path(tmp), args.max_pause, args.loiterers)
        rows.append(row)
        print(f"seed {seed}: {row['footage_s']:.0f} s footage in {row['wall_s']:.1f} s wall / {row['cpu_s']:.1f} s CPU"
              f" -> {row['rtf_wall']:.1f}x real time (wall), {row['rtf_cpu']:.1f}x per CPU second;"
              f" {row['people']} shoppers, {row['tracks']} tracks, {row['visits']} zone visits;"
              f" faces alone {row['faces_rtf_cpu']:.1f}x, people + faces {row['both_rtf_cpu']:.1f}x per CPU second;"
              f" faces + people from one decode {row['one_pass_rtf_cpu']:.1f}x per CPU second"
              f" ({row['one_pass_rtf_wall']:.1f}x wall)"
              f" ({'same' if row['one_pass_identical'] else 'DIFFERENT'} behaviour rows; face detections"
              f" {row['faces_one_pass']}, alone {row['faces_alone']})")
        print(f"  zone visits recall {row['recall']:.2f} precision {row['precision']:.2f} (IoU >= 0.5),"
              f" dwell MAE {row['dwell_mae']:.2f} s (raw frame-by-frame truth: recall {row['raw_recall']:.2f}"
              f" precision {row['raw_precision']:.2f}); footfall {row['footfall']} vs true {row['true_footfall']}"
              f" (entries off by {row['footfall_error']:.0%}); loitering recall {row['loiter_recall']:.2f}"
              f" precision {row['loiter_precision']:.2f} ({row['loiter_true']} true events)")
    for key, unit in (("rtf_wall", "x"), ("rtf_cpu", "x"), ("faces_rtf_cpu", "x"), ("both_rtf_cpu", "x"), ("one_pass_rtf_cpu", "x"),
                      ("one_pass_rtf_wall", "x"),
                      ("recall", ""), ("precision", ""), ("raw_recall", ""), ("raw_precision", ""),
                      ("dwell_mae", " s"), ("loiter_recall", ""), ("loiter_precision", ""),
                      ("footfall_error", "")):
        values = [row[key] for row in rows]
        spread = (f" (min {min(values):.2f}{unit}, max {max(values):.2f}{unit};"
                  f" mean {statistics.mean(values):.3f} ± sd {statistics.stdev(values):.3f})") if len(values) > 1 else ""
        print(f"{key}: median {statistics.median(values):.2f}{unit}{spread}")
    pooled = {k: sum(row[k] for row in rows) for k in ("visits", "people", "tracks", "loiter_true", "loiter_pred", "loiter_hits")}
    print(f"pooled over seeds: {pooled['people']} shoppers, {pooled['tracks']} tracks, {pooled['visits']} zone visits;"
          f" loitering {pooled['loiter_hits']} found of {pooled['loiter_true']} true events, {pooled['loiter_pred']} raised")
    print(f"{args.width}x{args.height}, {FPS} fps; peak memory {_peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
