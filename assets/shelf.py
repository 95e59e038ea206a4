"""Shelves: items falling in `kind: shelf` zones, per camera-day (in the vision job), and near-live per
Frigate segment (a sensor requests one small run per new segment, which alerts with a per-zone
cooldown). Bodies are module-level functions; `build_shelf_definitions` only decorates them."""

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from assets.jobs import SHELF_GROUP
from assets.partitions import WorkspacePartitions, parse_camera_day
from resources import WatershopResource
from watershop_dagster import catalog, lake
from watershop_dagster.alerts.channels import configured_senders
from watershop_dagster.alerts.delivery import DeliveryReport, deliver
from watershop_dagster.alerts.model import SOURCE_SHELF
from watershop_dagster.alerts.rules import falling_object_alerts
from watershop_dagster.config import WatershopConfig
from watershop_dagster.shelf.pipeline import (
    PROCESSED,
    QUARANTINED,
    REUSED,
    FileOutcome,
    falls_in_file,
    frigate_footage,
    neighbours,
    previous_file,
    process_shelf_camera_day,
    shelf_cameras,
)
from watershop_dagster.vision.footage import discover_footage

EVENTS = dg.AssetKey(catalog.FALLING_OBJECT_EVENTS.asset_key)
FILES = dg.AssetKey(catalog.FALLING_OBJECT_FILES.asset_key)
SEGMENT_JOB = "shelf_segment"
SEGMENT_STABLE_AFTER_S = 5  # Frigate moves a finished segment into recordings/ whole
SEGMENT_LOOKBACK = timedelta(hours=2)  # segments older than this are left to the camera-day run


def shelf(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Falls of the camera-day's footage; segments the near-live runs already did are read back, not redone."""
    shop_id, camera, day = parse_camera_day(context.partition_key)
    result = process_shelf_camera_day(watershop.config, shop_id, camera, day)
    quarantined = result.files.filter(pl.col("status") == QUARANTINED)
    yield dg.MaterializeResult(asset_key=EVENTS, metadata={
        "events": result.events.height,
        "zones": dg.MetadataValue.json(sorted(set(result.events["zone"].to_list()))),
    })
    yield dg.MaterializeResult(asset_key=FILES, metadata={
        "files": result.files.height, "processed": result.count(PROCESSED), "reused": result.count(REUSED),
        "quarantined": quarantined.height,
        "reasons": dg.MetadataValue.json(quarantined.select("path", "reason").head(50).to_dicts()),
    })


def falls_well_formed(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    shop_id, camera, day = parse_camera_day(context.partition_key)
    events = lake.read_dataset(watershop.config.lake_root, catalog.FALLING_OBJECT_EVENTS,
                               shop_id=shop_id, date=day, camera=camera)
    bad = events.filter((pl.col("landing_utc") < pl.col("release_utc")) | (pl.col("drop_height_px") <= 0)
                        | ~pl.col("confidence").is_between(0, 1))
    duplicated = events.height - events["event_id"].n_unique()
    return dg.AssetCheckResult(passed=bad.height == 0 and duplicated == 0,
                               metadata={"events": events.height, "bad": bad.height, "duplicated_ids": duplicated})


class SegmentConfig(dg.Config):
    shop_id: str
    path: str  # absolute path of the Frigate segment


def falls_in_segment(context: dg.OpExecutionContext, config: SegmentConfig, watershop: WatershopResource) -> None:
    """One new segment of a shelf camera: its falls stored for the camera-day run, and alerts sent."""
    cfg = watershop.config
    shop = cfg.shop(config.shop_id)
    footage = frigate_footage(cfg, shop, config.path)
    outcome = falls_in_file(cfg, shop, footage, previous_file(footage, neighbours(cfg, shop, footage)))
    if outcome.status == QUARANTINED:
        context.log.warning(f"segment {config.path} quarantined: {outcome.reason}")
        return
    report = alert_falls(cfg, shop.id, outcome)
    context.log.info(f"{outcome.events.height} fall(s) in {config.path} ({outcome.status}); alerts: {report.summary()}")


def alert_falls(cfg: WatershopConfig, shop_id: str, outcome: FileOutcome) -> DeliveryReport:
    """The segment's falls through the shared alert layer (the falling_object rules' cooldown per zone)."""
    alerts = falling_object_alerts(outcome.events, outcome.footage.camera, cfg.alerts.rules, shop_id, time.time(),
                                   SOURCE_SHELF)
    return deliver(cfg, shop_id, alerts, configured_senders(cfg))


shelf_segment_op = dg.op(name="falls_in_segment", description="Falls in one new segment of a shelf camera; "
                                                                 "alerts within the per-zone cooldown.")(falls_in_segment)


@dg.job(name=SEGMENT_JOB, description="One Frigate segment of a shelf camera through the fall detector (near-live).")
def shelf_segment_job():
    shelf_segment_op()


def new_segments(cfg: WatershopConfig, seen: dict, now: float) -> tuple[dict, list[tuple[str, str, str]]]:
    """(cursor, [(shop_id, path, run key)]) for stable Frigate segments of shelf cameras not requested yet.

    Only the last SEGMENT_LOOKBACK is scanned (older footage is the camera-day run's); the cursor
    keeps only what is still in that window."""
    current: dict[str, list] = {}
    requests_: list[tuple[str, str, str]] = []
    if not cfg.footage_root.exists():
        return current, requests_
    since = datetime.fromtimestamp(now, UTC) - SEGMENT_LOOKBACK
    for shop in cfg.shops:
        cameras = shelf_cameras(shop)
        if not cameras:
            continue
        days = sorted({since.astimezone(shop.tz).date(), datetime.fromtimestamp(now, shop.tz).date()})
        for day in days:
            found, _ = discover_footage(cfg.footage_root, shop, day, cameras)
            for footage in found:
                if footage.layout != "frigate" or footage.start_utc < since:
                    continue
                stat = footage.path.stat()
                if now - stat.st_mtime < SEGMENT_STABLE_AFTER_S:
                    continue
                key = f"{shop.id}::{footage.path}"
                current[key] = [stat.st_mtime_ns, stat.st_size]
                if seen.get(key) != current[key]:
                    requests_.append((shop.id, str(footage.path), f"segment:{key}:{stat.st_mtime_ns}:{stat.st_size}"))
    return current, requests_


@dg.sensor(job_name=SEGMENT_JOB, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests one small run per new Frigate segment of a shelf camera, so a fall's alert "
                       "reaches the manager within about two minutes.")
def shelf_segment_sensor(context: dg.SensorEvaluationContext, watershop: WatershopResource):
    seen = json.loads(context.cursor) if context.cursor else {}
    current, requests_ = new_segments(watershop.config, seen, time.time())
    for shop_id, path, run_key in requests_:
        yield dg.RunRequest(run_key=run_key, run_config=dg.RunConfig(
            ops={"falls_in_segment": SegmentConfig(shop_id=shop_id, path=path)}))
    context.update_cursor(json.dumps(current))


def build_shelf_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """Camera-day fall detection (every camera: those without shelf zones write empty partitions at
    once) and the near-live segment job with its sensor. Empty without cameras."""
    camera_day = partitions.camera_day
    if camera_day is None:
        return dg.Definitions()
    specs = [
        dg.AssetSpec(EVENTS, group_name=SHELF_GROUP, kinds={"parquet"},
                     description="Items falling in kind: shelf zones: release and landing time, drop height, size, confidence."),
        dg.AssetSpec(FILES, group_name=SHELF_GROUP, kinds={"parquet"},
                     description="Each footage file of the camera-day for the fall detector: processed, reused "
                                 "(done near-live) or quarantined, and why."),
    ]
    return dg.Definitions(
        assets=[dg.multi_asset(specs=specs, partitions_def=camera_day, name="shelf")(shelf)],
        asset_checks=[dg.asset_check(asset=EVENTS, partitions_def=camera_day,
                                     description="Landing after release, a positive drop, confidence in 0-1, unique ids.")(
            falls_well_formed)],
        jobs=[shelf_segment_job],
        sensors=[shelf_segment_sensor],
    )
