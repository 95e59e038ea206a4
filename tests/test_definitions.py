"""The Dagster layer's shape: bodies are plain module-level functions, decorated by one small factory
per domain; the code location loads (empty, with a warning) before any workspace config exists."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from assets import alerts, identity, marts, pos, vision
from assets.partitions import WorkspacePartitions, shop_day_key
from resources import WatershopResource
from watershop_dagster import lake
from watershop_dagster.config import CONFIG_ENV_VAR, CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.assemble import MissingWorkspaceConfig, code_location_definitions
from watershop_dagster.pos.generate import write_transaction_csvs

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: north
    timezone: Asia/Kolkata
    prices: {10L: 20, 20L: 35}
"""
DAY = date(2025, 3, 1)


@pytest.fixture
def config_file(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    return tmp_path / CONFIG_FILENAME


def test_without_a_config_the_code_location_is_empty_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path / "missing" / CONFIG_FILENAME))
    with pytest.warns(MissingWorkspaceConfig, match="watershop init"):
        defs = code_location_definitions()
    assert not defs.assets and not defs.jobs and not defs.sensors


def test_the_code_location_module_loads_without_a_config(tmp_path):
    """What `dagster dev -w workspace.yaml` does on a fresh checkout: import the module, read `defs`."""
    env = {"PATH": str(Path(sys.executable).parent), CONFIG_ENV_VAR: str(tmp_path / CONFIG_FILENAME),
           "HOME": str(tmp_path)}
    script = "from watershop_dagster.definitions import defs; print(len(list(defs.assets or [])))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    assert "no Watershop workspace config" in result.stderr


def test_a_pos_body_runs_as_a_unit_with_a_built_context(config_file):
    config = load_config(config_file)
    write_transaction_csvs(config, DAY, DAY, seed=3, transactions_per_day=20)
    (transactions,) = pos.build_pos_definitions(WorkspacePartitions.from_config(config)).assets
    context = dg.build_asset_context(partition_key=str(shop_day_key("north", DAY)))
    landed, quarantined = transactions(context, watershop=WatershopResource(config_path=str(config_file)))
    rows = lake.read_partition(config.lake_root, "transactions", shop_id="north", date=DAY.isoformat()).height
    assert landed.metadata["rows"] == rows > 0
    assert quarantined.metadata["rejected_rows"] == 0


def test_bodies_and_partition_free_definitions_are_module_level():
    assert callable(pos.transactions) and callable(vision.vision) and callable(identity.customer_registry)
    assert isinstance(pos.transactions_landing_sensor, dg.SensorDefinition)
    assert isinstance(vision.footage_sensor, dg.SensorDefinition)
    assert isinstance(alerts.alerts_sensor, dg.SensorDefinition)
    assert isinstance(identity.retention, dg.JobDefinition)


def test_a_workspace_without_cameras_has_no_vision_definitions(config_file):
    config_file.write_text(CONFIG + "    cameras: []\n")
    partitions = WorkspacePartitions.from_config(load_config(config_file))
    assert partitions.camera_day is None and partitions.camera_to_shop is None
    assert not vision.build_vision_definitions(partitions).assets


def test_zone_marts_are_assets_only_where_a_camera_has_zones(config_file):
    """A UI backfill of every asset of a water shop must not wait for zone marts nothing can fill."""
    def mart_keys() -> set[str]:
        (assets_def,) = marts.build_marts_definitions(WorkspacePartitions.from_config(load_config(config_file))).assets
        return {key.path[-1] for key in assets_def.keys}

    config_file.write_text(CONFIG + "    cameras: [counter]\n")
    water = mart_keys()
    assert "daily_revenue" in water and not water & {"zone_visits", "zone_dwell_daily", "fct_zone_hour"}
    config_file.write_text(CONFIG + '    cameras:\n      aisle:\n        zones:\n          promo: {coordinates: "0,0,1,0,1,1"}\n')
    assert {"zone_visits", "zone_dwell_daily", "fct_zone_hour"} <= mart_keys()


def test_each_model_has_one_dbt_tests_check_covering_every_test_of_it(config_file):
    """~200 dbt tests as ~40 checks (a day run writes three events per check result): no test is lost,
    and a model's check blocks exactly when one of its tests has severity error."""
    import json

    from dagster_dbt import DagsterDbtTranslator
    from dagster_dbt.asset_utils import DAGSTER_DBT_UNIQUE_ID_METADATA_KEY, build_dbt_specs

    (assets_def,) = marts.build_marts_definitions(WorkspacePartitions.from_config(load_config(config_file))).assets
    manifest = json.loads(marts.dbt_project().manifest_path.read_text())
    specs = list(assets_def.check_specs)
    assert specs and {spec.name for spec in specs} == {marts.DBT_TESTS_CHECK}
    assert len({spec.asset_key for spec in specs}) == len(specs)
    covered = [test for spec in specs for test in spec.metadata[marts.TEST_IDS_METADATA]]
    assert len(covered) == len(set(covered))
    # the tests dagster-dbt's default translator makes one check each of, on the same models
    _, per_test = build_dbt_specs(translator=DagsterDbtTranslator(), manifest=manifest, select="fqn:*",
                                  exclude=f"tag:{marts.ZONES_TAG}", selector="", io_manager_key=None, project=None)
    assert set(covered) == {spec.metadata[DAGSTER_DBT_UNIQUE_ID_METADATA_KEY] for spec in per_test}
    for spec in specs:
        severities = {(manifest["nodes"][t]["config"].get("severity") or "error").lower()
                      for t in spec.metadata[marts.TEST_IDS_METADATA]}
        assert spec.blocking == ("error" in severities)


def test_a_models_test_summary_fails_on_any_failing_test_and_is_an_error_only_for_error_tests():
    summary = marts.summarize_tests([("a", "pass", 0), ("b", "warn", 3), ("c", "skipped", None)])
    assert (summary.passed, summary.warned, summary.failed, summary.failed_rows) == (["a"], ["b"], [], {"b": 3})
    result = summary.check_result(dg.AssetKey(["marts", "x"]))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN and result.metadata["tests"].value == 2
    assert result.metadata["summary"].value == "b"
    failed = marts.summarize_tests([("a", "pass", 0), ("b", "fail", 1), ("c", "error", None)])
    assert failed.failed == ["b", "c"] and failed.check_result(dg.AssetKey("x")).severity == dg.AssetCheckSeverity.ERROR
    assert marts.summarize_tests([("a", "pass", 0)]).check_result(dg.AssetKey("x")).passed


def test_a_run_reads_the_workspace_config_once(config_file, monkeypatch):
    import resources

    reads = []
    monkeypatch.setattr(resources, "load_config", lambda path: reads.append(path) or load_config(path))

    @dg.asset
    def first(watershop: WatershopResource):
        for _ in range(3):
            assert watershop.config.shop_ids == ["north"]

    @dg.asset(deps=[first])
    def second(watershop: WatershopResource):
        assert watershop.config.shop_ids == ["north"]

    resource = WatershopResource(config_path=str(config_file))
    assert dg.materialize([first, second], resources={"watershop": resource}).success
    assert reads == [str(config_file)]
    assert dg.materialize([first, second], resources={"watershop": resource}).success
    assert len(reads) == 2  # the next run reads it afresh (an edited config applies from the next run)


def test_building_definitions_and_instances_leaves_the_process_environment_alone(tmp_path, monkeypatch):
    from watershop_dagster.dbt import dbt_vars
    from watershop_dagster.orchestration.assemble import build_definitions
    from watershop_dagster.orchestration.instance import workspace_instance

    for name in ("DAGSTER_HOME", CONFIG_ENV_VAR, "WATERSHOP_LAKE_ROOT", "WATERSHOP_BUILD_DB"):
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    configs = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / CONFIG_FILENAME).write_text(CONFIG + "    cameras: []\n")
        configs.append(load_config(tmp_path / name / CONFIG_FILENAME))
        build_definitions(tmp_path / name / CONFIG_FILENAME)
        workspace_instance(configs[-1]).dispose()
    assert dict(os.environ) == before
    # dbt learns a workspace's paths from its vars, never from the environment
    assert dbt_vars(configs[0])["watershop_lake_root"] == str(configs[0].lake_root)
    assert dbt_vars(configs[1])["watershop_build_db"] == str(configs[1].build_db)


def test_the_served_marts_check_reads_the_published_file_read_only(config_file):
    import duckdb

    from assets.marts import SERVED_MARTS, served_marts_complete
    from resources import served_marts

    config = load_config(config_file)
    config.marts_db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(config.marts_db)) as db:
        for name in SERVED_MARTS[1:]:
            db.execute(f"create table {name} as select 1 as x")
    resource = served_marts(config)
    result = served_marts_complete(dg.build_asset_check_context(), resource)
    assert not result.passed and result.metadata["missing"].value == [SERVED_MARTS[0]]
    with duckdb.connect(str(config.marts_db)) as db:
        db.execute(f"create table {SERVED_MARTS[0]} as select 1 as x")
    result = served_marts_complete(dg.build_asset_check_context(), resource)
    assert result.passed and result.metadata["rows"].value[SERVED_MARTS[0]] == 1
    with resource.get_connection() as db, pytest.raises(duckdb.Error):
        db.execute("create table written as select 1")  # the served file is never written through it
