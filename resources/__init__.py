"""Dagster resources: the workspace config and the served marts file (read-only DuckDB). dbt runs in-process
(watershop_dagster.dbt_runner), so it needs no resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from watershop_dagster.config import WatershopConfig, load_config
from watershop_dagster.lake import lake_identity


class WatershopResource(dg.ConfigurableResource):
    """The workspace config (shops, cameras, paths, thresholds) read from `config_path`: parsed once
    when a run (or sensor tick) sets the resource up, not on every access."""

    config_path: str
    _config: WatershopConfig | None = PrivateAttr(default=None)
    _lake_at_start: tuple[int, int] | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._config = load_config(self.config_path)  # a run sees one config, read at its start
        lake_root = self._config.lake_root
        self._lake_at_start = lake_identity(lake_root) if lake_root.exists() else None  # None: a fresh lake

    @property
    def lake_at_start(self) -> tuple[int, int] | None:
        """The lake folder's identity when the run started (see lake.require_same_lake)."""
        return self._lake_at_start

    @property
    def config(self) -> WatershopConfig:
        if self._config is None:  # used outside a run (tests, scripts): parse on first access
            self._config = load_config(self.config_path)
        return self._config


def served_marts(config: WatershopConfig) -> DuckDBResource:
    """The published marts file, opened read-only: the Dagster layer's one way into DuckDB (dbt
    writes the private build file itself; warehouse.publish_marts publishes each build under it)."""
    return DuckDBResource(database=str(config.marts_db), connection_config={"access_mode": "READ_ONLY"})


def build_resources(config_file: str | Path, config: WatershopConfig) -> dict[str, object]:
    """The resources every definition uses, for the workspace config at `config_file` (parsed as `config`)."""
    return {
        "watershop": WatershopResource(config_path=str(config_file)),
        "served_marts": served_marts(config),
    }
