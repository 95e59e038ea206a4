"""Materialize shop-days through Dagster, recording the runs in the workspace's DAGSTER_HOME.

A range runs in two passes, as a backfill from the UI would:
  1. in date order, per shop-day: one vision run per camera-day (and a Frigate run where Frigate's
     events of the camera-day landed), then the shop-day's POS and identity run (the customer
     registry grows day by day), then one behaviour run per camera-day of the shop's people cameras
     (faces seen on person tracks need the day's identities);
  2. per shop: one run of the marts and reports over each stretch of days whose first pass
     succeeded. One incremental dbt build over a stretch costs about what one day costs.
A single day (the daily case) needs no second pass: its shop-day runs the whole daily job at once,
unless a camera tracks people (the marts then wait for its behaviour run).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import groupby
from pathlib import Path

import dagster as dg

from assets.jobs import BEHAVIOUR_JOB, DAILY_JOB, FRIGATE_JOB, VISION_JOB
from assets.partitions import camera_day_key, shop_day_key
from watershop_dagster.behaviour.partition import people_cameras
from watershop_dagster.config import config_path, load_config
from watershop_dagster.frigate.landing import landing_file
from watershop_dagster.identity.erasure import finish_pending_erasures
from watershop_dagster.lake import lake_identity, require_same_lake
from watershop_dagster.lake_sweep import sweep_temp_files
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.orchestration.instance import workspace_instance
from watershop_dagster.orchestration.recovery import RangeGuard, process_tags, recover_dead_runs
from watershop_dagster.progress import CAMERA_DAYS, SHOP_DAYS, NoProgress, RunProgress
from watershop_dagster.vision.partition import camera_day_has_work

RANGE_GROUPS = ("marts", "reports")  # built once per stretch of days
# Dagster's documented run tags of a single-run backfill over a partition range (not exported as
# constants by the public API): a run with them materializes the whole range in one go.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class PartitionRun:
    shop_id: str
    day: date
    run_id: str  # the shop-day's POS and identity run
    success: bool  # every run the shop-day took part in succeeded
    failed_steps: tuple[str, ...]
    vision_run_ids: tuple[str, ...] = ()  # vision and behaviour runs of the shop's camera-days
    marts_run_id: str | None = None  # None when the first pass failed


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def contiguous_stretches(days: list[date]) -> list[list[date]]:
    """Sorted days split where a day is missing."""
    ordered = sorted(days)
    return [[d for _, d in group] for _, group in groupby(enumerate(ordered), lambda item: item[1] - timedelta(item[0]))]


def _split_daily_job(daily: dg.JobDefinition) -> tuple[dg.JobDefinition, dg.JobDefinition]:
    """The daily job's assets and checks as (per shop-day part, per stretch part)."""
    graph = daily.asset_layer.asset_graph
    keys = set(daily.asset_layer.executable_asset_keys)
    later = {key for key in keys if graph.get(key).group_name in RANGE_GROUPS}

    def subset(selected):
        checks = {check for check in graph.asset_check_keys if check.asset_key in selected}
        return daily.get_subset(asset_selection=selected, asset_check_selection=checks)

    return subset(keys - later), subset(later)


def run_range(
    start: date, end: date, config_file: str | Path | None = None, shop_ids: list[str] | None = None,
    progress: RunProgress | None = None, run_config: dict | None = None,
) -> list[PartitionRun]:
    """Every asset of the range's shop-days, in the two passes above; every run is visible in the
    Dagster UI. A failed vision run does not stop its shop-day: the other cameras' faces and the POS
    data still land, and the shop-day reports the failure. `progress` hears about each finished
    camera-day and shop-day; `run_config` goes to every run (the CLI quiets the console logger)."""
    progress = progress or NoProgress()
    config_file = config_path(config_file)
    config = load_config(config_file)
    instance = workspace_instance(config)
    recover_dead_runs(instance)  # a killed earlier run must not hold the duckdb_build slot forever
    sweep_temp_files(config.lake_root)  # temp files of writes a killed run left behind
    finish_pending_erasures(config)  # an interrupted `forget` first: no run may re-create the person
    definitions = build_definitions(config_file)
    daily = definitions.resolve_job_def(DAILY_JOB)
    per_day, per_stretch = _split_daily_job(daily)
    vision = definitions.resolve_job_def(VISION_JOB) if any(s.cameras for s in config.shops) else None
    frigate = definitions.resolve_job_def(FRIGATE_JOB) if config.frigate else None

    def frigate_landed(shop_id: str, camera: str, day: date) -> bool:
        return (frigate is not None and shop_id == config.frigate_shop.id
                and landing_file(config.frigate_landing, shop_id, camera, day).exists())
    shops = shop_ids or config.shop_ids
    for shop_id in shops:
        config.shop(shop_id)
    people = {shop_id: people_cameras(config.shop(shop_id)) for shop_id in shops}
    behaviour = definitions.resolve_job_def(BEHAVIOUR_JOB) if any(people.values()) else None
    one_day = start == end and behaviour is None

    lake_seen = [lake_identity(config.lake_root) if config.lake_root.exists() else None]  # None: a fresh lake

    def execute(job, partition_key=None, tags=None):
        run_id = str(uuid.uuid4())
        with guard.watch(run_id):
            result = job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False,
                                            run_id=run_id, run_config=run_config,
                                            tags={"watershop/trigger": "cli", **process_tags(), **(tags or {})})
        if lake_seen[0] is None and config.lake_root.exists():
            lake_seen[0] = lake_identity(config.lake_root)
        if lake_seen[0] is not None:
            require_same_lake(config.lake_root, lake_seen[0])  # an unmounted NAS stops the range here
        failed = tuple(event.step_key for event in result.all_events if event.is_step_failure and event.step_key)
        return result, failed

    with RangeGuard(instance) as guard:  # Ctrl-C/SIGTERM stop the range; slot waits are reported
        first_pass: dict[tuple[str, date], PartitionRun] = {}
        landed: set[tuple[str, date]] = set()  # shop-days whose POS and identity run succeeded
        days = days_between(start, end)
        if vision:
            progress.stage_started(CAMERA_DAYS, len(days) * sum(len(config.shop(s).cameras) + len(people[s])
                                                                for s in shops))
        progress.stage_started(SHOP_DAYS, len(days) * len(shops))
        for day in days:
            for shop_id in shops:
                vision_runs, vision_failed, vision_ok = [], [], True
                for camera in config.shop(shop_id).cameras:
                    failed = ()
                    if camera_day_has_work(config, shop_id, camera, day):  # no footage: no run, as the sensor
                        result, failed = execute(vision, camera_day_key(shop_id, camera, day))
                        vision_runs.append(result.run_id)
                        vision_failed += [f"{camera}:{step}" for step in failed]
                        vision_ok &= result.success
                    if frigate_landed(shop_id, camera, day):  # Frigate's events of the camera-day, beside vision
                        result, frigate_failed = execute(frigate, camera_day_key(shop_id, camera, day))
                        vision_runs.append(result.run_id)
                        vision_failed += [f"{camera}:{step}" for step in frigate_failed]
                        vision_ok &= result.success
                        failed = (*failed, *frigate_failed)
                    progress.advanced(CAMERA_DAYS, detail=f"{shop_id}.{camera} {day}")
                    if failed:
                        progress.warned(f"{shop_id}.{camera} {day}: vision step {', '.join(failed)} failed")
                result, failed = execute(daily if one_day else per_day, shop_day_key(shop_id, day))
                for camera in people[shop_id]:
                    behaviour_result, behaviour_failed = execute(behaviour, camera_day_key(shop_id, camera, day))
                    vision_runs.append(behaviour_result.run_id)
                    vision_failed += [f"{camera}:{step}" for step in behaviour_failed]
                    vision_ok &= behaviour_result.success
                    progress.advanced(CAMERA_DAYS, detail=f"{shop_id}.{camera} {day} behaviour")
                    if behaviour_failed:
                        progress.warned(f"{shop_id}.{camera} {day}: behaviour step {', '.join(behaviour_failed)} failed")
                if result.success and not one_day:
                    landed.add((shop_id, day))
                progress.advanced(SHOP_DAYS, detail=f"{shop_id} {day}")
                first_pass[(shop_id, day)] = PartitionRun(
                    shop_id, day, result.run_id, result.success and vision_ok, (*vision_failed, *failed),
                    tuple(vision_runs), result.run_id if one_day and result.success else None)

        for shop_id in shops:
            for stretch in contiguous_stretches([day for shop, day in landed if shop == shop_id]):
                result, failed = execute(per_stretch, tags={
                    PARTITION_RANGE_START_TAG: str(shop_day_key(shop_id, stretch[0])),
                    PARTITION_RANGE_END_TAG: str(shop_day_key(shop_id, stretch[-1])),
                })
                for day in stretch:
                    run = first_pass[(shop_id, day)]
                    first_pass[(shop_id, day)] = PartitionRun(
                        shop_id, day, run.run_id, run.success and result.success, (*run.failed_steps, *failed),
                        run.vision_run_ids, result.run_id)
        return list(first_pass.values())  # filled in date order, then shop order
