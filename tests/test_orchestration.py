"""Schedules and sensors evaluated against a real workspace (no run is launched)."""

from __future__ import annotations

import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assets.partitions import shop_day_key
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.pos.generate import write_transaction_csvs

CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: north
    timezone: Asia/Kolkata
    closing_time: "21:00"
  - id: late
    timezone: America/New_York
    closing_time: "23:30"
"""


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    return load_config(tmp_path / CONFIG_FILENAME)


@pytest.fixture
def defs(workspace):
    return build_definitions(workspace.workspace_dir / CONFIG_FILENAME)


def _keys(requests):
    return sorted(str(r.partition_key) for r in requests)


def test_schedules_run_after_closing_for_the_day_that_closed(defs):
    north = defs.resolve_schedule_def("north_after_closing")
    assert north.cron_schedule == "0 22 * * *"
    assert north.execution_timezone == "Asia/Kolkata"
    tick = datetime(2025, 3, 4, 22, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        request = north.evaluate_tick(context).run_requests[0]
    assert request.partition_key == shop_day_key("north", date(2025, 3, 4))

    late = defs.resolve_schedule_def("late_after_closing")
    assert late.cron_schedule == "30 0 * * *"
    tick = datetime(2025, 3, 5, 0, 30, tzinfo=ZoneInfo("America/New_York"))
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        request = late.evaluate_tick(context).run_requests[0]
    assert request.partition_key == shop_day_key("late", date(2025, 3, 4))


def test_landing_sensor_requests_partitions_of_new_and_changed_files(workspace, defs):
    sensor = defs.resolve_sensor_def("transactions_landing_sensor")
    resources = {"watershop": defs.resources["watershop"]}

    def tick(cursor):
        with dg.build_sensor_context(cursor=cursor, resources=resources, repository_def=defs.get_repository_def()) as context:
            result = sensor.evaluate_tick(context)
        return result.run_requests, result.cursor

    requests, cursor = tick(None)
    assert requests == []
    write_transaction_csvs(workspace, date(2025, 3, 1), date(2025, 3, 2), shop_ids=["north"])
    requests, cursor = tick(cursor)
    assert _keys(requests) == ["2025-03-01|north", "2025-03-02|north"]
    requests, cursor = tick(cursor)
    assert requests == []

    # An undated export is mapped to the days its rows carry; a changed file is requested again.
    undated = workspace.transactions_landing / "late" / "export.csv"
    undated.parent.mkdir(parents=True, exist_ok=True)
    undated.write_text(
        "transaction_id,timestamp,customer_id,payment_mode,can_size,number_of_cans,amount,payment_status\n"
        "L-1,2025-03-03 09:00:00,C1,UPI,20L,1,35,Paid\nL-2,2025-03-05 09:00:00,C2,UPI,20L,1,35,Paid\n"
    )
    requests, cursor = tick(cursor)
    assert _keys(requests) == ["2025-03-03|late", "2025-03-05|late"]
    day_file = next((workspace.transactions_landing / "north").glob("*2025-03-02*.csv"))
    day_file.write_text(day_file.read_text() + "\n")
    os.utime(day_file, ns=(1, 2))
    requests, cursor = tick(cursor)
    assert _keys(requests) == ["2025-03-02|north"]
    assert len({r.run_key for r in requests}) == len(requests)


def test_definitions_expose_assets_checks_schedules_and_sensors(defs):
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"lake/transactions", "lake/transactions_quarantine", "marts/daily_revenue", "marts/repeat_defaulters"} <= keys
    check_names = {key.name for key in graph.asset_check_keys}
    assert {"transactions_integrity", "amount_matches_price", "no_rejected_rows"} <= check_names
    assert defs.resolve_job_def("watershop_daily").partitions_def == defs.resolve_assets_def(dg.AssetKey(["lake", "transactions"])).partitions_def
