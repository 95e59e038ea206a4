"""dbt marts in DuckDB, built per shop-day from the lake and published for BI readers."""

import json
import os
import subprocess
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from assets.partitions import parse_shop_day
from resources import WatershopResource
from watershop_dagster.config import WatershopConfig
from watershop_dagster.dbt import dbt_env, dbt_project, ensure_manifest
from watershop_dagster.warehouse import build_lock, publish_marts


class WatershopDbtTranslator(DagsterDbtTranslator):
    """Sources are the lake assets (lake/<table>); models live under dbt/<layer> or marts/<name>."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        name = dbt_resource_props["name"]
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["lake", name])
        layer = dbt_resource_props.get("fqn", ["", "marts"])[1]
        return dg.AssetKey(["marts", name] if layer == "marts" else ["dbt", layer, name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "marts"


def build_marts_definitions(config: WatershopConfig, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    project = dbt_project()
    os.environ.update(dbt_env(config))
    ensure_manifest(project)

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        partitions_def=partitions,
        dagster_dbt_translator=WatershopDbtTranslator(),
        pool="duckdb_build",
    )
    def watershop_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, watershop: WatershopResource):
        """Incremental dbt build of one shop-day, then an atomic publish of the served marts file."""
        cfg = watershop.config
        shop_id, day = parse_shop_day(context.partition_key)
        os.environ.update(dbt_env(cfg))
        with build_lock(cfg):
            args = ["build", "--vars", json.dumps({"shop_id": shop_id, "date": day.isoformat()})]
            invocation = dbt.cli(args, context=context)
            try:
                yield from invocation.stream()
            finally:
                _stop(invocation.process)  # never release the lock while dbt still writes
            served = publish_marts(cfg)
        context.log.info(f"published marts to {served}")

    return dg.Definitions(assets=[watershop_marts])


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
