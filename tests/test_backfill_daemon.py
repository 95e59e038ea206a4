"""A backfill launched the way the UI launches one (the webserver's GraphQL API), run by a real
`dagster-daemon`: the shop-day assets take a range (single-run backfill policy), so a date range of
one shop is one run with one dbt build."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import polars as pl
import pytest

from assets.partitions import shop_day_key
from watershop_dagster.config import CONFIG_ENV_VAR, CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.orchestration.instance import ensure_dagster_home, workspace_instance
from watershop_dagster.pos.generate import write_transaction_csvs

pytestmark = pytest.mark.slow

START = date(2025, 4, 1)
DAYS = [START + timedelta(days=i) for i in range(3)]
CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: kiosk
    timezone: Asia/Kolkata
    cameras: []
    prices: {10L: 20, 20L: 35}
"""
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
  }
}
"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""
SENSORS = """
query Sensors {
  sensorsOrError(repositorySelector: {repositoryLocationName: "watershop", repositoryName: "__repository__"}) {
    __typename
    ... on Sensors { results { name id } }
  }
}
"""
STOP_SENSOR = """
mutation Stop($id: String!) { stopSensor(id: $id) { __typename } }
"""
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str, variables: dict) -> dict:
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables},
                          timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture
def served_workspace(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(tmp_path / CONFIG_FILENAME)
    write_transaction_csvs(config, DAYS[0], DAYS[-1], seed=5, transactions_per_day=25)
    ensure_dagster_home(config)  # the workspace's dagster.yaml, which the webserver and daemon below use
    workspace_yaml = tmp_path / "workspace.yaml"
    workspace_yaml.write_text("load_from:\n  - python_module:\n      module_name: watershop_dagster.definitions\n"
                              "      location_name: watershop\n")
    env = {**os.environ, CONFIG_ENV_VAR: str(tmp_path / CONFIG_FILENAME), "DAGSTER_HOME": str(config.dagster_home)}
    bin_dir = Path(sys.executable).parent
    port = _free_port()
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("webserver", "daemon")}
    processes = [
        subprocess.Popen([str(bin_dir / "dagster-webserver"), "-w", str(workspace_yaml), "-h", "127.0.0.1",
                          "-p", str(port)], env=env, cwd=tmp_path, stdout=logs["webserver"], stderr=subprocess.STDOUT),
    ]
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "webserver.log").read_text()[-3000:]
            time.sleep(1)
        # only the backfill should launch runs: the landing sensor would request the same days
        sensors = _graphql(port, SENSORS, {})["sensorsOrError"]
        assert sensors["__typename"] == "Sensors", sensors
        for sensor in sensors["results"]:
            assert _graphql(port, STOP_SENSOR, {"id": sensor["id"]})["stopSensor"]["__typename"] == "StopSensorMutationResult"
        processes.append(subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace_yaml)], env=env,
                                          cwd=tmp_path, stdout=logs["daemon"], stderr=subprocess.STDOUT))
        yield config, port, tmp_path
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs.values():
            log.close()


@pytest.mark.timeout(1500)
def test_a_ui_backfill_of_a_date_range_is_one_run(served_workspace):
    config, port, tmp_path = served_workspace
    defs = build_definitions(config.workspace_dir / CONFIG_FILENAME)
    assets = sorted(defs.resolve_asset_graph().materializable_asset_keys)
    data = _graphql(port, LAUNCH, {"params": {
        "assetSelection": [{"path": key.path} for key in assets],
        "partitionNames": [str(shop_day_key("kiosk", day)) for day in DAYS],
        "title": "test backfill",
    }})["launchPartitionBackfill"]
    assert data["__typename"] == "LaunchBackfillSuccess", data
    backfill_id = data["backfillId"]

    deadline = time.monotonic() + 1200
    status = None
    while time.monotonic() < deadline:
        status = _graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        if status in FINISHED:
            break
        time.sleep(5)
    daemon_log = (tmp_path / "daemon.log").read_text()[-4000:]
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, (status, daemon_log)

    instance = workspace_instance(config)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    # one run over the whole range: ingest, identity, one dbt build and the reports
    assert len(runs) == 1, [(run.tags, sorted(k.to_user_string() for k in run.asset_selection or ())) for run in runs]
    (run,) = runs
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/asset_partition_range_start"] == str(shop_day_key("kiosk", DAYS[0]))
    assert run.tags["dagster/asset_partition_range_end"] == str(shop_day_key("kiosk", DAYS[-1]))
    marts_key = dg.AssetKey(["marts", "daily_revenue"])
    assert {dg.AssetKey(["lake", "transactions"]), dg.AssetKey(["lake", "visits"]), marts_key,
            dg.AssetKey(["reports", "shop_reports"])} <= set(run.asset_selection)

    # every day of the range is materialized, and the marts agree with the CSVs
    for key in (dg.AssetKey(["lake", "transactions"]), marts_key, dg.AssetKey(["reports", "shop_reports"])):
        done = instance.get_materialized_partitions(key)
        assert {str(shop_day_key("kiosk", day)) for day in DAYS} <= set(done), key
    csv = pl.concat([pl.read_csv(p, infer_schema=False)
                     for p in sorted((config.landing_dir / "transactions" / "kiosk").glob("*.csv"))])
    expected = csv.group_by(day=pl.col("timestamp").str.slice(0, 10)).agg(
        revenue=pl.col("amount").cast(pl.Float64).sum())
    with duckdb.connect(str(config.marts_db), read_only=True) as con:
        served = pl.from_arrow(con.sql("select strftime(date, '%Y-%m-%d') as day, "
                                       "sum(revenue)::double as revenue from marts.daily_revenue "
                                       "group by all").arrow())
    assert served.sort("day").equals(expected.sort("day").select("day", "revenue"))
