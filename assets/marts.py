"""dbt marts in DuckDB, built incrementally from the lake and published for BI readers.

A daily run builds one shop-day. A backfill builds each shop's whole range in one run (single-run
backfill policy): one incremental dbt build over the days costs about what one day costs, where a
run per shop-day would pay dbt's fixed start-up for every day."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, dbt_assets
from dagster_dbt.asset_utils import (
    default_asset_check_fn,
    get_asset_check_key_for_test,
    get_dbt_resource_names_for_asset_keys,
    get_manifest_and_translator_from_dbt_assets,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_duckdb import DuckDBResource

from assets.partitions import WorkspacePartitions, parse_shop_day
from resources import WatershopResource
from watershop_dagster import catalog
from watershop_dagster.dbt import ZONES_TAG, dbt_project, ensure_manifest
from watershop_dagster.dbt_runner import DbtBuildResult, project_runner
from watershop_dagster.identity.merges import marts_rebuild_from
from watershop_dagster.lake import lake_identity, require_same_lake
from watershop_dagster.warehouse import build_lock, publish_marts


class WatershopDbtTranslator(DagsterDbtTranslator):
    """Sources are the lake assets (lake/<table>); models live under dbt/<layer> or marts/<name>.
    A camera-day source feeds the shop-day models through the camera -> shop mapping."""

    def __init__(self, camera_to_shop: dg.PartitionMapping | None = None):
        super().__init__()
        self.camera_to_shop = camera_to_shop
        self._test_checks: dict[dg.AssetKey, dg.AssetCheckSpec] = {}

    def get_partition_mapping(self, dbt_resource_props: Mapping[str, Any],
                              dbt_parent_resource_props: Mapping[str, Any]) -> dg.PartitionMapping | None:
        if dbt_parent_resource_props["resource_type"] == "source" and \
                "camera" in catalog.dataset(dbt_parent_resource_props["name"]).partition_keys:
            return self.camera_to_shop
        return super().get_partition_mapping(dbt_resource_props, dbt_parent_resource_props)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        name = dbt_resource_props["name"]
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(catalog.dataset(name).asset_key)
        layer = dbt_resource_props.get("fqn", ["", "marts"])[1]
        return dg.AssetKey(["marts", name] if layer == "marts" else ["dbt", layer, name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "marts"

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project: Any) -> dg.AssetCheckSpec | None:
        """One `dbt_tests` check per model for all its dbt tests, not one check per test: each check
        result costs three event-log writes, and ~200 tests made them a quarter of a day run's CPU."""
        if default_asset_check_fn(manifest, self, asset_spec.key, unique_id, project) is None:
            return None
        if asset_spec.key not in self._test_checks:  # every test of the model asks for the same spec
            self._test_checks[asset_spec.key] = self._tests_check_spec(asset_spec, manifest, unique_id, project)
        return self._test_checks[asset_spec.key]

    def _tests_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                          project: Any) -> dg.AssetCheckSpec:
        model = next((parent for parent in manifest["parent_map"][unique_id]
                      if self.get_asset_spec(manifest, parent, project).key == asset_spec.key), None)
        tests = [test_id for test_id in manifest["child_map"].get(model, []) if test_id.startswith("test")
                 and (key := get_asset_check_key_for_test(manifest, self, test_id, project)) is not None
                 and key.asset_key == asset_spec.key]
        parents = {self.get_asset_spec(manifest, parent, project).key
                   for test_id in tests for parent in manifest["parent_map"].get(test_id, [])}
        blocking = any((manifest["nodes"][test_id]["config"].get("severity") or "error").lower() == "error"
                       for test_id in tests)
        return dg.AssetCheckSpec(
            name=DBT_TESTS_CHECK, asset=asset_spec.key, additional_deps=parents - {asset_spec.key}, blocking=blocking,
            description=f"The model's {len(tests)} dbt tests; the failing ones are named in the result.",
            metadata={TEST_IDS_METADATA: sorted(tests)})


DBT_TESTS_CHECK = "dbt_tests"  # the one asset check per model that reports all of its dbt tests
TEST_IDS_METADATA = "watershop/dbt_test_unique_ids"
FAILED_TEST_STATUSES = frozenset({"fail", "error"})


@dataclass
class DbtTestSummary:
    """The dbt test results of one model in one build."""
    passed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)  # failed, but with severity warn
    failed: list[str] = field(default_factory=list)  # failed (or errored) with severity error
    failed_rows: dict[str, int] = field(default_factory=dict)

    def check_result(self, key: dg.AssetKey) -> dg.AssetCheckResult:
        severity = dg.AssetCheckSeverity.ERROR if self.failed else dg.AssetCheckSeverity.WARN
        failing = [*self.failed, *self.warned]
        return dg.AssetCheckResult(
            asset_key=key, check_name=DBT_TESTS_CHECK, passed=not failing, severity=severity,
            metadata={"summary": ", ".join(failing) or "all passed",  # what `watershop run` prints of a failure
                      "tests": len(self.passed) + len(self.warned) + len(self.failed),
                      "failed": dg.MetadataValue.json(self.failed), "warned": dg.MetadataValue.json(self.warned),
                      "failed_rows": dg.MetadataValue.json(self.failed_rows)})


def summarize_tests(results: Iterable[tuple[str, str, int | None]]) -> DbtTestSummary:
    """(test name, dbt status, failing rows) of one model's tests -> their summary; skipped tests
    (an upstream model failed) count in none of the lists."""
    summary = DbtTestSummary()
    for name, status, failures in results:
        if status == "pass":
            summary.passed.append(name)
        elif status in ("warn", *FAILED_TEST_STATUSES):
            (summary.warned if status == "warn" else summary.failed).append(name)
            if failures:
                summary.failed_rows[name] = failures
    return summary


def watershop_marts(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Incremental dbt build of the run's shop-days (in-process, the project parsed once), then an
    atomic publish of its marts (warehouse.publish_marts), unless the lake folder vanished or was
    swapped since the run started (an unmounted NAS reads as an empty lake)."""
    cfg = watershop.config
    with build_lock(cfg):
        require_same_lake(cfg.lake_root, watershop.lake_at_start)
        lake_before = lake_identity(cfg.lake_root)
        scope = merges_scope(cfg.lake_root, dbt_scope(context.partition_keys))
        result = project_runner().build(cfg, scope, extra_args=_selection_args(context))
        yield from _dagster_events(context, result)
        if not result.success:
            raise dg.Failure(description="dbt build failed; nothing was published",
                             metadata={"error": result.error or "", "failures": dg.MetadataValue.json(result.failures)})
        require_same_lake(cfg.lake_root, lake_before)  # dbt reads an unmounted lake as empty: never publish that
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


def build_marts_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """The dbt models as assets on the shop-day partitions. A workspace whose cameras have no zones
    gets no zone marts: a UI backfill of "all assets" must not wait for marts nothing can fill."""
    project = dbt_project()
    ensure_manifest(project)
    has_zones = any(shop.zones() for shop in partitions.shops)
    return dg.Definitions(assets=[dbt_assets(
        manifest=project.manifest_path,
        project=project,
        exclude=None if has_zones else f"tag:{ZONES_TAG}",
        partitions_def=partitions.shop_day,
        dagster_dbt_translator=WatershopDbtTranslator(partitions.camera_to_shop),
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


def merges_scope(lake_root: Path, scope: dict[str, str]) -> dict[str, str]:
    """The scope, starting earlier when its days' registry builds merged a customer into another: the
    merged id's earlier days are rebuilt, so no mart still names it (identity.merges)."""
    first, last = date.fromisoformat(scope["date"]), date.fromisoformat(scope["date_to"])
    since = marts_rebuild_from(lake_root, scope.get("shop_id"), first, last)
    return {**scope, "date": since.isoformat()} if since is not None and since < first else scope


def _selection_args(context: dg.AssetExecutionContext) -> list[str]:
    """dbt's --select for the models and tests this run selected: everything (tests by dbt's eager
    indirect selection) unless the run is a subset, which names its models and the tests of its
    selected `dbt_tests` checks (indirect selection off)."""
    assets_def = context.assets_def
    if (assets_def.keys_by_output_name == assets_def.node_keys_by_output_name
            and assets_def.check_specs_by_output_name == assets_def.node_check_specs_by_output_name):
        return ["--select", "fqn:*"]
    manifest, translator, _ = get_manifest_and_translator_from_dbt_assets([assets_def])
    models = get_dbt_resource_names_for_asset_keys(translator, manifest, assets_def, context.selected_asset_keys)
    tests = [".".join(manifest["nodes"][test_id]["fqn"]) for check in context.selected_asset_check_keys
             for test_id in assets_def.get_spec_for_check_key(check).metadata[TEST_IDS_METADATA]]
    return ["--select", " ".join([*models, *tests]), "--indirect-selection", "empty"]


def _dagster_events(context: dg.AssetExecutionContext, result: DbtBuildResult) -> Iterator[Any]:
    """Each model's Output from dbt's own events, then one `dbt_tests` check result per model whose
    tests ran (all its tests in one result)."""
    manifest, translator, project = get_manifest_and_translator_from_dbt_assets([context.assets_def])
    tests: dict[dg.AssetKey, list[tuple[str, str, int | None]]] = {}
    for raw_event in result.events:
        node = raw_event["data"]["node_info"]
        if node["unique_id"].startswith("test"):
            key = get_asset_check_key_for_test(manifest, translator, node["unique_id"], project)
            if key is not None:
                detail = result.failure_details.get(node["unique_id"])  # e.g. which not-null columns held nulls
                tests.setdefault(key.asset_key, []).append(
                    (f"{key.name} ({detail})" if detail else key.name,
                     (node.get("node_status") or raw_event["data"].get("status") or "").lower(),
                     raw_event["data"].get("num_failures")))
            continue
        event = DbtCoreCliEventMessage(raw_event=raw_event, event_history_metadata={})
        yield from event.to_default_asset_events(manifest=manifest, dagster_dbt_translator=translator,
                                                 context=context, project=project)
    selected = context.selected_asset_check_keys
    for asset_key, results in tests.items():
        summary = summarize_tests(results)
        check = dg.AssetCheckKey(asset_key, DBT_TESTS_CHECK)
        if check in selected and (summary.passed or summary.warned or summary.failed):
            yield summary.check_result(asset_key)
