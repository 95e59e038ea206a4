"""The production instance (deploy/dagster.postgres.yaml) records a real shop-day run in PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from assets.jobs import DAILY_JOB
from assets.partitions import shop_day_key
from assets.pos import TRANSACTIONS
from watershop_dagster import lake
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.pos.generate import write_transaction_csvs

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

pytestmark = [pytest.mark.services, pytest.mark.slow]

POSTGRES_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.postgres.yaml"
# The server to test against; the same variables the instance yaml reads, loopback by default.
PG = {
    "host": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("DAGSTER_PG_PORT", "5432"),
    "user": os.environ.get("DAGSTER_PG_USER", "postgres"),
    "password": os.environ.get("DAGSTER_PG_PASSWORD", ""),
}
DAY = date(2025, 3, 1)
CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: north
    timezone: Asia/Kolkata
    prices: {10L: 20, 20L: 35}
"""


def _connect(dbname: str):
    return psycopg.connect(
        host=PG["host"], port=PG["port"], user=PG["user"], password=PG["password"] or None,
        dbname=dbname, autocommit=True, connect_timeout=3,
    )


@pytest.fixture
def pg_database():
    """A fresh, empty database, dropped afterwards."""
    try:
        admin = _connect("postgres")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG['host']}:{PG['port']} as {PG['user']}: {exc}")
    name = f"watershop_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with _connect("postgres") as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def postgres_instance(pg_database, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(POSTGRES_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in {**PG, "db": pg_database}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{key.upper()}", value)
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_a_shop_day_run_is_recorded_in_postgres(postgres_instance, pg_database, tmp_path):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    instance = postgres_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(workspace / CONFIG_FILENAME)
    write_transaction_csvs(config, DAY, DAY, seed=5, transactions_per_day=30)
    key = shop_day_key("north", DAY)

    job = build_definitions(workspace / CONFIG_FILENAME).resolve_job_def(DAILY_JOB)
    result = job.execute_in_process(instance=instance, partition_key=key)
    assert result.success
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert TRANSACTIONS in materialized and len(materialized) > 5  # POS, vision and the dbt marts

    # Through the instance API.
    run = instance.get_run_by_id(result.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.job_name == DAILY_JOB
    assert run.tags["dagster/partition"] == str(key)
    latest = instance.get_latest_materialization_event(TRANSACTIONS)
    assert latest.run_id == result.run_id
    assert latest.dagster_event.partition == str(key)
    rows = lake.read_partition(config.lake_root, "transactions", shop_id="north", date=DAY.isoformat()).height
    assert rows > 0
    assert latest.asset_materialization.metadata["rows"].value == rows
    assert instance.get_materialized_partitions(TRANSACTIONS) == {str(key)}

    # Straight from the database, as any other reader of the instance sees it.
    with _connect(pg_database) as db:
        assert db.execute(
            "select pipeline_name, status from runs where run_id = %s", (result.run_id,)
        ).fetchone() == (DAILY_JOB, "SUCCESS")
        recorded = db.execute(
            "select asset_key, partition from event_logs"
            " where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
            (result.run_id,),
        ).fetchall()
        assert {dg.AssetKey(json.loads(asset_key)) for asset_key, _ in recorded} == materialized
        assert {partition for _, partition in recorded} == {str(key)}
        assert db.execute(
            "select count(*) from event_logs where run_id = %s and dagster_event_type = %s",
            (result.run_id, dg.DagsterEventType.RUN_SUCCESS.value),
        ).fetchone() == (1,)
        # The dbt step ran in the duckdb_build pool: one slot (default_limit), released again.
        assert db.execute(
            'select "limit", using_default_limit from concurrency_limits where concurrency_key = %s', ("duckdb_build",)
        ).fetchone() == (1, True)
        assert db.execute(
            "select count(*) from concurrency_slots where concurrency_key = 'duckdb_build' and run_id is null"
        ).fetchone() == (1,)
