"""Assembles the code location's definitions from a workspace config: each domain's factory gets the
workspace's partitions, built once."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from assets.alerts import build_alert_definitions
from assets.behaviour import build_behaviour_definitions
from assets.frigate import build_frigate_definitions
from assets.identity import build_identity_definitions
from assets.jobs import build_jobs_definitions
from assets.marts import build_marts_definitions
from assets.partitions import WorkspacePartitions
from assets.pos import build_pos_definitions
from assets.receipts import build_receipts_definitions
from assets.reports import build_reports_definitions
from assets.shelf import build_shelf_definitions
from assets.vision import build_vision_definitions
from resources import build_resources
from watershop_dagster.config import CONFIG_ENV_VAR, config_path, load_config


class MissingWorkspaceConfig(UserWarning):
    """The code location was loaded before any workspace config exists."""


def build_definitions(config_file: str | Path | None = None) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor of the workspace at `config_file` (default:
    $WATERSHOP_CONFIG, else ./data_lake/watershop.yaml)."""
    config_file = config_path(config_file)
    config = load_config(config_file)
    partitions = WorkspacePartitions.from_config(config)
    return dg.Definitions.merge(
        build_pos_definitions(partitions),
        build_receipts_definitions(partitions),
        build_vision_definitions(partitions),
        build_frigate_definitions(partitions) if config.frigate else dg.Definitions(),
        build_shelf_definitions(partitions),
        build_identity_definitions(partitions),
        build_alert_definitions(),
        build_behaviour_definitions(partitions),
        build_marts_definitions(partitions),
        build_reports_definitions(partitions),
        build_jobs_definitions(partitions),
        dg.Definitions(resources=build_resources(config_file, config)),
    )


def code_location_definitions() -> dg.Definitions:
    """The code location's definitions; empty (and a warning saying why) when no workspace config
    exists yet, so `dagster dev` starts on a fresh checkout instead of failing to load."""
    config_file = config_path()
    if not config_file.is_file():
        warnings.warn(f"no Watershop workspace config at {config_file}: the code location is empty. Create one "
                      f"with `watershop init DIR` (or `watershop demo`) and set {CONFIG_ENV_VAR} to "
                      "DIR/watershop.yaml.", MissingWorkspaceConfig, stacklevel=2)
        return dg.Definitions()
    return build_definitions(config_file)
