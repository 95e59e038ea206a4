"""Dagster resources: the workspace config and the dbt CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from watershop_dagster.config import WatershopConfig, load_config
from watershop_dagster.dbt import dbt_project


class WatershopResource(dg.ConfigurableResource):
    """The workspace config (shops, cameras, paths, thresholds) read from `config_path`."""

    config_path: str

    @property
    def config(self) -> WatershopConfig:
        return load_config(self.config_path)


def dbt_executable() -> str:
    """The dbt installed beside this Python (a venv's bin/ need not be on PATH), else dbt on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def build_resources(config_file: Path) -> dict[str, object]:
    return {
        "watershop": WatershopResource(config_path=str(config_file)),
        "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=dbt_executable()),
    }
