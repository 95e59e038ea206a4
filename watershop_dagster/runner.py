"""Materialize shop-day partitions through Dagster, recording the runs in the workspace's DAGSTER_HOME."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from assets.daily import DAILY_JOB
from assets.partitions import shop_day_key
from watershop_dagster.code_location import build_definitions
from watershop_dagster.config import CONFIG_ENV_VAR, config_path, load_config
from watershop_dagster.instance import workspace_instance


@dataclass(frozen=True)
class PartitionRun:
    shop_id: str
    day: date
    run_id: str
    success: bool
    failed_steps: tuple[str, ...]


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def run_range(
    start: date, end: date, config_file: str | Path | None = None, shop_ids: list[str] | None = None
) -> list[PartitionRun]:
    """One Dagster run per shop-day, in date order; every run is visible in the Dagster UI."""
    config_file = config_path(config_file)
    config = load_config(config_file)
    os.environ[CONFIG_ENV_VAR] = str(config_file)
    instance = workspace_instance(config)
    job = build_definitions(config_file).resolve_job_def(DAILY_JOB)
    shops = shop_ids or config.shop_ids
    for shop_id in shops:
        config.shop(shop_id)
    runs = []
    for day in days_between(start, end):
        for shop_id in shops:
            result = job.execute_in_process(
                instance=instance,
                partition_key=shop_day_key(shop_id, day),
                raise_on_error=False,
                tags={"watershop/trigger": "cli"},
            )
            failed = tuple(
                event.step_key for event in result.all_events if event.is_step_failure and event.step_key
            )
            runs.append(PartitionRun(shop_id, day, result.run_id, result.success, failed))
    return runs
