"""Frigate as a source: one camera-day of landed Frigate messages into the behaviour datasets
(source="frigate"), and the sensor that requests camera-days once they have landed and the shop's
day has closed. Built only for a workspace with a `frigate:` section (orchestration.assemble).

The rows go into the same lake datasets as the recordings path (lake/zone_visits, ...); the
assets here are keyed ["frigate", <dataset>] so the two sources never claim one asset key. A
camera-day without a landing file writes nothing, so it never blanks another source's partition.
"""

import json
import time
from datetime import date, datetime

import dagster as dg

from assets.jobs import FRIGATE_GROUP, FRIGATE_JOB, frigate_job
from assets.partitions import WorkspacePartitions, camera_day_key, parse_camera_day
from resources import WatershopResource
from watershop_dagster import catalog, lake
from watershop_dagster.config import WatershopConfig
from watershop_dagster.frigate.events import build_landed_camera_day, sub_label_people
from watershop_dagster.frigate.landing import UNROUTED, landed_camera_days, landing_file

QUARANTINE = dg.AssetKey(catalog.FRIGATE_MESSAGES_QUARANTINE.asset_key)
OUTPUTS = (catalog.PERSON_TRACKS, catalog.ZONE_VISITS, catalog.LOITERING_EVENTS, catalog.FOOTFALL,
           catalog.ZONE_OCCUPANCY, catalog.ZONE_TRANSITIONS)
STABLE_AFTER_SECONDS = 60  # a landing file still being appended to is left for a later tick


def frigate_key(entry: catalog.Dataset) -> dg.AssetKey:
    return dg.AssetKey(["frigate", entry.name])


def frigate_events(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """The camera-day's Frigate messages -> behaviour datasets; bad messages quarantined (also the
    day's messages that named no configured camera, under camera=_unrouted)."""
    cfg = watershop.config
    shop_id, camera, day = parse_camera_day(context.partition_key)
    root = cfg.frigate_landing
    path = landing_file(root, shop_id, camera, day)
    if not path.exists():
        for entry in OUTPUTS:
            yield dg.MaterializeResult(asset_key=frigate_key(entry), metadata={"written": False})
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"written": False, "landing_file": str(path)})
        return
    shop = cfg.shop(shop_id)
    settings = shop.camera_settings.get(camera)
    detect = settings.detect if settings else None
    frame_size = (detect.width, detect.height) if detect and detect.width and detect.height else None
    people = sub_label_people(cfg.known_people_dir, cfg.frigate_sub_labels)
    result = build_landed_camera_day(path, root, camera, shop.zones(camera), people, frame_size,
                                     cfg.thresholds.zone_exit_debounce_seconds)
    keys = {"shop_id": shop_id, "date": day, "camera": camera}
    for entry, frame in result.frames():
        lake.write_dataset(frame, cfg.lake_root, entry, **keys)
    unrouted_path = landing_file(root, shop_id, UNROUTED, day)
    unrouted = 0
    if unrouted_path.exists():
        bad = build_landed_camera_day(unrouted_path, root, UNROUTED, [], {}).quarantine
        lake.write_dataset(bad, cfg.lake_root, catalog.FRIGATE_MESSAGES_QUARANTINE, shop_id=shop_id, date=day,
                           camera=UNROUTED)
        unrouted = bad.height
    for entry, frame in result.frames()[:-1]:
        yield dg.MaterializeResult(asset_key=frigate_key(entry), metadata={"rows": frame.height})
    reasons = result.quarantine.group_by("reason").len().sort("len", descending=True).rows()
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        **result.counts, "unrouted_quarantined": unrouted, "landing_file": str(path),
        "reasons": dg.MetadataValue.json({reason: n for reason, n in reasons})})


def frigate_changes(config: WatershopConfig, seen: dict, now: float) -> tuple[dict, list[tuple[str, str, date, str]]]:
    """(files' size/mtime now, camera-days to run with a digest): configured cameras' landing files
    that changed, stopped growing, and whose shop day has closed."""
    shop = config.frigate_shop
    current, requests = {}, []
    local_now = datetime.fromtimestamp(now, shop.tz)
    for (camera, day), (size, mtime_ns) in landed_camera_days(config.frigate_landing, shop.id).items():
        if camera not in shop.cameras or day < config.partitions_start:
            continue
        closed = local_now >= datetime.combine(day, shop.closing_time, shop.tz)
        if not closed or now - mtime_ns / 1e9 < STABLE_AFTER_SECONDS:
            continue
        key = f"{camera}/{day.isoformat()}"
        current[key] = f"{size}:{mtime_ns}"
        if seen.get(key) != current[key]:
            requests.append((shop.id, camera, day, current[key]))
    return current, requests


@dg.sensor(job_name=FRIGATE_JOB, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests the camera-days of landed Frigate messages once the shop's day has closed and "
                       "the file stopped growing (a late message re-runs the day).")
def frigate_sensor(context: dg.SensorEvaluationContext, watershop: WatershopResource):
    seen = json.loads(context.cursor) if context.cursor else {}
    current, requests = frigate_changes(watershop.config, seen, time.time())
    for shop_id, camera, day, digest in requests:
        yield dg.RunRequest(partition_key=camera_day_key(shop_id, camera, day),
                            run_key=f"frigate:{shop_id}:{camera}:{day}:{digest}")
    context.update_cursor(json.dumps({**seen, **current}))


def _spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(key, description=description, group_name=FRIGATE_GROUP, kinds={"parquet"})


FRIGATE_SPECS = [
    *[_spec(frigate_key(entry), f"Frigate-sourced rows of lake/{entry.name} (source=frigate).") for entry in OUTPUTS],
    _spec(QUARANTINE, "Frigate messages that could not be used (invalid JSON, unknown camera, missing fields, "
                      "duplicates, out of the object's life), each with its reason."),
]


def build_frigate_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """The Frigate camera-day asset and its sensor (empty without cameras)."""
    if partitions.camera_day is None:
        return dg.Definitions()
    return dg.Definitions(
        assets=[dg.multi_asset(specs=FRIGATE_SPECS, partitions_def=partitions.camera_day)(frigate_events)],
        sensors=[frigate_sensor],
        jobs=[frigate_job],
    )
