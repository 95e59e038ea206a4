"""dbt marts in DuckDB, built incrementally from the lake and published for BI readers.

A daily run builds one shop-day. A backfill builds each shop's whole range in one run (single-run
backfill policy): one incremental dbt build over the days costs about what one day costs, where a
run per shop-day would pay dbt's fixed start-up for every day."""

import json
import subprocess
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from assets.partitions import WorkspacePartitions, parse_shop_day
from resources import WatershopResource
from watershop_dagster import catalog
from watershop_dagster.config import WatershopConfig
from watershop_dagster.dbt import dbt_environment, dbt_project, dbt_vars, ensure_manifest
from watershop_dagster.warehouse import build_lock, publish_marts


class WatershopDbtTranslator(DagsterDbtTranslator):
    """Sources are the lake assets (lake/<table>); models live under dbt/<layer> or marts/<name>."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        name = dbt_resource_props["name"]
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(catalog.dataset(name).asset_key)
        layer = dbt_resource_props.get("fqn", ["", "marts"])[1]
        return dg.AssetKey(["marts", name] if layer == "marts" else ["dbt", layer, name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "marts"


def watershop_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, watershop: WatershopResource):
    """Incremental dbt build of the run's shop-days, then an atomic publish of the served marts file."""
    cfg = watershop.config
    with build_lock(cfg):
        scope = dbt_scope(context.partition_keys)
        with dbt_environment(cfg):  # the dbt subprocess starts here and keeps this environment
            invocation = dbt.cli(["build", "--vars", json.dumps(dbt_vars(cfg, scope))], context=context)
        try:
            yield from invocation.stream()
        finally:
            _stop(invocation.process)  # never release the lock while dbt still writes
        served = publish_marts(cfg)
    context.log.info(f"published marts to {served}")


# The marts the reports and BI dashboards read: the served file must always hold every one of them.
SERVED_MARTS = (
    "daily_revenue", "payment_summary", "cans_per_day", "repeat_defaulters", "total_spent",
    "daily_visits", "traffic_per_hour", "first_last_customer", "peak_hours", "new_customers",
    "returning_customers", "customer_visit_counts",
)
DAILY_REVENUE = dg.AssetKey(["marts", "daily_revenue"])


def served_marts_complete(context: dg.AssetCheckExecutionContext, served_marts: DuckDBResource) -> dg.AssetCheckResult:
    """Reads the published file as a BI tool would (read-only): every served mart is there and readable."""
    rows, missing = {}, []
    with served_marts.get_connection() as db:
        tables = {name for (name,) in db.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
        for name in SERVED_MARTS:
            if name in tables:
                rows[name] = db.execute(f'select count(*) from "{name}"').fetchone()[0]
            else:
                missing.append(name)
    return dg.AssetCheckResult(passed=not missing, metadata={
        "missing": dg.MetadataValue.json(missing), "rows": dg.MetadataValue.json(rows)})


def build_marts_definitions(partitions: WorkspacePartitions, config: WatershopConfig) -> dg.Definitions:
    """The dbt models as assets on the shop-day partitions; `config` is where dbt parses the project
    against (its sources name the workspace's lake)."""
    project = dbt_project()
    with dbt_environment(config):
        ensure_manifest(project)
    return dg.Definitions(assets=[dbt_assets(
        manifest=project.manifest_path,
        project=project,
        partitions_def=partitions.shop_day,
        dagster_dbt_translator=WatershopDbtTranslator(),
        pool="duckdb_build",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )(watershop_marts)], asset_checks=[dg.asset_check(
        asset=DAILY_REVENUE, partitions_def=partitions.shop_day,
        description="The published marts file (what BI tools read) holds every served mart, readable read-only.",
    )(served_marts_complete)])


def dbt_scope(partition_keys: list[str]) -> dict[str, str]:
    """dbt vars covering the run's shop-days: the shop (when there is one) and the first and last
    day. Days or shops between them are rebuilt too, which is exact and idempotent; one dbt build
    means each model is materialized once per run."""
    shop_days = [parse_shop_day(key) for key in partition_keys]
    shops = {shop_id for shop_id, _ in shop_days}
    days = [day for _, day in shop_days]
    scope = {"date": min(days).isoformat(), "date_to": max(days).isoformat()}
    return {"shop_id": shops.pop(), **scope} if len(shops) == 1 else scope


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
