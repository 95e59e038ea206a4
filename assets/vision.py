"""Vision: footage -> frames -> face detections -> tracks -> embeddings per camera-day, with checks and
a footage sensor (the job is in assets.jobs). Bodies are module-level functions; `build_vision_definitions`
only decorates them with the workspace's camera-day partitions."""

import hashlib
import json
import time
from datetime import date, datetime

import dagster as dg
import numpy as np
import polars as pl

from assets.jobs import VISION_GROUP, VISION_JOB
from assets.partitions import WorkspacePartitions, camera_day_key, parse_camera_day
from resources import WatershopResource
from watershop_dagster import catalog, lake
from watershop_dagster.config import WatershopConfig
from watershop_dagster.vision.footage import scan_footage
from watershop_dagster.vision.partition import FILE_PROCESSED, process_camera_day

FOOTAGE_FILES = dg.AssetKey(catalog.FOOTAGE_FILES.asset_key)
FOOTAGE_QUARANTINE = dg.AssetKey(catalog.FOOTAGE_QUARANTINE.asset_key)
FRAMES = dg.AssetKey(catalog.FRAMES.asset_key)
DETECTIONS = dg.AssetKey(catalog.FACE_DETECTIONS.asset_key)
TRACKS = dg.AssetKey(catalog.FACE_TRACKS.asset_key)
EMBEDDINGS = dg.AssetKey(catalog.FACE_EMBEDDINGS.asset_key)
STABLE_AFTER_SECONDS = 30  # a file still being copied is not taken


def vision(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Motion-gated face detection and embedding of the camera-day's footage; long files are split
    into slices so both cores are busy (a camera that tracks people: one process, whose decode also
    feeds the people tracker for behaviour)."""
    cfg = watershop.config
    shop_id, camera, day = parse_camera_day(context.partition_key)
    started = time.perf_counter()
    result = process_camera_day(cfg, shop_id, camera, day, workers=cfg.vision.workers)
    wall = time.perf_counter() - started
    files = result.files
    yield dg.MaterializeResult(asset_key=FOOTAGE_FILES, metadata={
        "files": files.height,
        "processed": files.filter(pl.col("status") == FILE_PROCESSED).height,
        "footage_seconds": round(result.footage_seconds, 1),
        "realtime_factor": round(result.footage_seconds / wall, 1) if wall else 0.0,
    })
    yield dg.MaterializeResult(asset_key=FOOTAGE_QUARANTINE, metadata={
        "quarantined_files": result.quarantine.height,
        "reasons": dg.MetadataValue.json(result.quarantine.head(50).to_dicts()),
    })
    for dataset in catalog.CAMERA_OUTPUTS:
        yield dg.MaterializeResult(asset_key=dg.AssetKey(dataset.asset_key), metadata={"rows": result.count(dataset.name)})


def footage_all_readable(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    shop_id, camera, day = parse_camera_day(context.partition_key)
    bad = lake.read_dataset(watershop.config.lake_root, catalog.FOOTAGE_QUARANTINE,
                            shop_id=shop_id, date=day, camera=camera)
    return dg.AssetCheckResult(passed=bad.height == 0, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"quarantined_files": bad.height,
                                         "files": dg.MetadataValue.json(bad.to_dicts()[:50])})


def embeddings_well_formed(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    shop_id, camera, day = parse_camera_day(context.partition_key)
    embeddings = lake.read_dataset(watershop.config.lake_root, catalog.FACE_EMBEDDINGS,
                                   shop_id=shop_id, date=day, camera=camera)
    tracks = lake.read_dataset(watershop.config.lake_root, catalog.FACE_TRACKS, shop_id=shop_id, date=day, camera=camera)
    problems = embedding_problems(embeddings, tracks)
    return dg.AssetCheckResult(passed=not problems, metadata={"rows": embeddings.height,
                                                              "problems": dg.MetadataValue.json(problems)})


def tracks_consistent(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    shop_id, camera, day = parse_camera_day(context.partition_key)
    tracks = lake.read_dataset(watershop.config.lake_root, catalog.FACE_TRACKS, shop_id=shop_id, date=day, camera=camera)
    bad = tracks.filter((pl.col("end_utc") < pl.col("start_utc")) | (pl.col("n_detections") < 1))
    return dg.AssetCheckResult(passed=bad.height == 0, metadata={"tracks": tracks.height, "bad": bad.height})


@dg.sensor(job_name=VISION_JOB, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests the camera-days of new or changed footage once files stop growing and the "
                       "shop's day has closed (a day still recording would be re-processed all day long).")
def footage_sensor(context: dg.SensorEvaluationContext, watershop: WatershopResource):
    cfg = watershop.config
    seen = json.loads(context.cursor) if context.cursor else {}
    current, requests = footage_changes(cfg, seen, time.time())
    for shop_id, camera, day, digest in sorted(requests):
        yield dg.RunRequest(partition_key=camera_day_key(shop_id, camera, day),
                            run_key=f"footage:{shop_id}:{camera}:{day}:{digest}")
    context.update_cursor(json.dumps(current))


def _spec(key: dg.AssetKey, description: str, deps=()) -> dg.AssetSpec:
    return dg.AssetSpec(key, description=description, group_name=VISION_GROUP, kinds={"parquet"}, deps=deps)


VISION_SPECS = [
    _spec(FOOTAGE_FILES, "Every footage file of the camera-day with its start time and processing status."),
    _spec(FOOTAGE_QUARANTINE, "Footage files skipped (zero-byte, truncated, corrupt, no time in path) and why."),
    _spec(FRAMES, "Per decoded-and-scored frame: camera, timestamp, motion score, whether faces were searched.",
          [FOOTAGE_FILES]),
    _spec(DETECTIONS, "Face detections (box, detection score, quality), linked to tracks.", [FRAMES]),
    _spec(TRACKS, "Detections of one face linked across frames.", [DETECTIONS]),
    _spec(EMBEDDINGS, "128-d dlib embeddings of the best detections per track (no face images).", [TRACKS]),
]


def build_vision_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """Camera-day partitions: each camera's day is processed, retried and backfilled on its own.
    Empty for a workspace without cameras."""
    camera_day = partitions.camera_day
    if camera_day is None:
        return dg.Definitions()
    return dg.Definitions(
        assets=[dg.multi_asset(specs=VISION_SPECS, partitions_def=camera_day,
                               op_tags={"dagster/concurrency_key": "vision"})(vision)],
        asset_checks=[
            dg.asset_check(asset=FOOTAGE_QUARANTINE, partitions_def=camera_day,
                           description="Warns when any footage file of the camera-day was skipped.")(
                footage_all_readable),
            dg.asset_check(asset=EMBEDDINGS, partitions_def=camera_day, blocking=True,
                           description="Embeddings are 128-d, finite, unit-scale, unique and belong to known tracks.")(
                embeddings_well_formed),
            dg.asset_check(asset=TRACKS, partitions_def=camera_day,
                           description="Every track ends at or after its start and has at least one detection.")(
                tracks_consistent),
        ],
        sensors=[footage_sensor],
    )


def embedding_problems(embeddings: pl.DataFrame, tracks: pl.DataFrame) -> list[str]:
    problems = []
    if embeddings.height == 0:
        return problems
    vectors = np.asarray(embeddings["embedding"].to_numpy(), dtype=np.float32).reshape(embeddings.height, -1)
    if vectors.shape[1] != 128:
        problems.append(f"embeddings have {vectors.shape[1]} dimensions, expected 128")
    if not np.isfinite(vectors).all():
        problems.append("non-finite values in embeddings")
    norms = np.linalg.norm(vectors, axis=1)
    if ((norms < 0.2) | (norms > 2.0)).any():
        problems.append(f"{int(((norms < 0.2) | (norms > 2.0)).sum())} embeddings with implausible norm")
    if embeddings["embedding_id"].n_unique() != embeddings.height:
        problems.append("duplicate embedding_id")
    orphans = embeddings.join(tracks, on="track_id", how="anti").height
    if orphans:
        problems.append(f"{orphans} embeddings reference unknown tracks")
    return problems


def footage_changes(
    config: WatershopConfig, seen: dict, now: float
) -> tuple[dict, set[tuple[str, str, date, str]]]:
    """Stable files' (mtime, size) now, and the closed camera-days with a new or changed file (with a
    digest of the camera-day's files)."""
    current: dict[str, list] = {}
    day_files: dict[tuple[str, str, date], list] = {}
    changed: set[tuple[str, str, date]] = set()
    if not config.footage_root.exists():
        return current, set()
    for shop in config.shops:
        files, _ = scan_footage(config.footage_root, shop)
        for footage in files:
            stat = footage.path.stat()
            if now - stat.st_mtime < STABLE_AFTER_SECONDS:
                continue
            key = f"{shop.id}::{footage.path}"
            current[key] = [stat.st_mtime_ns, stat.st_size]
            camera_day = (shop.id, footage.camera, footage.start_utc.astimezone(shop.tz).date())
            day_files.setdefault(camera_day, []).append([key, current[key]])
            if seen.get(key) != current[key]:
                changed.add(camera_day)
    closed = {shop.id: datetime.fromtimestamp(now, shop.tz) for shop in config.shops}
    requests = set()
    for shop_id, camera, day in changed:
        shop = config.shop(shop_id)
        if day < config.partitions_start:
            continue
        if closed[shop_id] < datetime.combine(day, shop.closing_time, shop.tz):
            for key, _ in day_files[(shop_id, camera, day)]:
                current.pop(key)  # the day is still recording: taken on a tick after closing
            continue
        digest = hashlib.sha1(json.dumps(sorted(day_files[(shop_id, camera, day)])).encode()).hexdigest()[:12]
        requests.add((shop_id, camera, day, digest))
    return current, requests
