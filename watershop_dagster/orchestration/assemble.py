"""Builds the code location's definitions from a workspace config."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.daily import DAILY_JOB, build_daily_definitions
from assets.identity import build_identity_definitions
from assets.marts import build_marts_definitions
from assets.partitions import camera_day_partitions, shop_day_partitions
from assets.pos import build_pos_definitions
from assets.reports import build_reports_definitions
from assets.vision import build_vision_definitions
from resources import build_resources
from watershop_dagster.config import config_path, load_config


def build_definitions(config_file: Path | None = None) -> dg.Definitions:
    config_file = config_path(config_file)
    config = load_config(config_file)
    partitions = shop_day_partitions(config)
    cameras = camera_day_partitions(config)
    return dg.Definitions.merge(
        build_pos_definitions(config, partitions, DAILY_JOB),
        build_vision_definitions(config, cameras) if cameras else dg.Definitions(),
        build_identity_definitions(config, partitions),
        build_marts_definitions(config, partitions),
        build_reports_definitions(partitions),
        build_daily_definitions(config),
        dg.Definitions(resources=build_resources(config_file)),
    )

