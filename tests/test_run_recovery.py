"""Real `watershop run` processes killed and interrupted: the next run is never blocked (issue #11.1)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import date

import duckdb
import polars as pl
import pytest
from dagster import DagsterRunStatus, RunsFilter
from dagster._core.storage.dagster_run import DagsterRun

from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.instance import workspace_instance
from watershop_dagster.orchestration.recovery import PID_TAG, UNFINISHED_STATUSES, process_tags
from watershop_dagster.pos.generate import write_transaction_csvs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAY = date(2025, 3, 1)
POOL = "duckdb_build"
CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: north
    timezone: Asia/Kolkata
    prices: {10L: 20, 20L: 35}
    cameras: []
"""
STEP_TIMEOUT = 420  # a shared 2-core machine under load: generous, still far below the pytest timeout


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(tmp_path / CONFIG_FILENAME)
    write_transaction_csvs(config, DAY, DAY, seed=5, transactions_per_day=20)
    return config


def _command(config) -> list[str]:
    return [sys.executable, "-m", "watershop_dagster.cli", "run", "--config",
            str(config.workspace_dir / CONFIG_FILENAME), "--from", str(DAY), "--to", str(DAY)]


def _start(config, log_path):
    # its own process group, as a shell job is: its dbt children can be found after a kill
    return subprocess.Popen(_command(config), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for(predicate, what: str, proc=None, timeout: float = STEP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"watershop run exited ({proc.returncode}) before {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _slot_holders(instance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def _runs_of(instance, pid: int):
    return instance.get_runs(filters=RunsFilter(tags={PID_TAG: str(pid)}))


def test_a_killed_run_holding_the_slot_does_not_block_the_next_run(workspace, tmp_path):
    instance = workspace_instance(workspace)
    killed = _start(workspace, tmp_path / "killed.log")
    holder = _wait_for(lambda: _slot_holders(instance), "the marts step to hold the duckdb_build slot", killed)
    killed.kill()
    killed.wait()
    (held_by,) = holder
    # the fault: the dead run is left STARTED, holding the only slot
    assert instance.get_run_by_id(held_by).status == DagsterRunStatus.STARTED
    assert _slot_holders(instance) == {held_by}

    rerun = subprocess.run(_command(workspace), capture_output=True, text=True, timeout=STEP_TIMEOUT)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "1/1 shop-days succeeded" in rerun.stdout

    dead = instance.get_run_by_id(held_by)
    assert dead.status == DagsterRunStatus.FAILURE
    assert not instance.get_runs(filters=RunsFilter(statuses=UNFINISHED_STATUSES))
    assert _slot_holders(instance) == set()
    truth = pl.read_csv(next((workspace.transactions_landing / "north").glob("*.csv")))
    with duckdb.connect(str(workspace.marts_db), read_only=True) as db:
        got = db.execute("select transactions, revenue::double, cans from daily_revenue where shop_id='north'").fetchall()
    assert got == [(truth.height, pytest.approx(truth["amount"].sum()), truth["number_of_cans"].sum())]


def test_ctrl_c_stops_a_run_waiting_for_the_slot_and_leaves_nothing_started(workspace, tmp_path):
    instance = workspace_instance(workspace)
    # a live run (this test process) holds the only duckdb_build slot
    holder_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="slot_holder", run_id=holder_id, status=DagsterRunStatus.STARTED,
                                tags=process_tags()))
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    assert storage.claim_concurrency_slot(POOL, holder_id, "holder_step").is_claimed
    try:
        log = tmp_path / "blocked.log"
        blocked = _start(workspace, log)
        # the blocked run says what it waits for, naming the holder
        _wait_for(lambda: holder_id in log.read_text(errors="replace") and "waits for a slot" in log.read_text(
            errors="replace"), "the wait message naming the holder", blocked)
        assert blocked.poll() is None

        interrupted_at = time.monotonic()
        blocked.send_signal(signal.SIGINT)
        returncode = blocked.wait(timeout=60)
        elapsed = time.monotonic() - interrupted_at
        assert returncode != 0
        assert elapsed < 20, f"took {elapsed:.1f}s to stop"
        runs = _runs_of(instance, blocked.pid)
        assert runs, "the blocked CLI recorded no runs"
        assert [r.run_id for r in runs if r.status in UNFINISHED_STATUSES] == []
        assert {r.run_id for r in runs} & storage.get_concurrency_run_ids() == set()
        assert _slot_holders(instance) == {holder_id}  # a live holder is never robbed
    finally:
        storage.free_concurrency_slots_for_run(holder_id)
        instance.report_run_failed(instance.get_run_by_id(holder_id), "test holder released")


def _add_run(instance, tags) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="j", run_id=run_id, status=DagsterRunStatus.STARTED, tags=tags))
    return run_id


@pytest.mark.timeout(120)
def test_recover_dead_runs_fails_only_runs_whose_process_is_gone(tmp_path):
    from dagster import instance_for_test

    from watershop_dagster.orchestration.recovery import PROCESS_START_TAG, recover_dead_runs

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child_tags = {**process_tags(), PID_TAG: str(child.pid), "watershop/pgid": "0"}
    child_tags[PROCESS_START_TAG] = open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[19]
    with instance_for_test(temp_dir=str(tmp_path), overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        alive = _add_run(instance, process_tags())
        recycled = _add_run(instance, {**process_tags(), PROCESS_START_TAG: "1"})  # same pid, another process
        other_host = _add_run(instance, {**child_tags, "watershop/host": "elsewhere"})
        dead = _add_run(instance, child_tags)
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(POOL)
        assert storage.claim_concurrency_slot(POOL, dead, "marts").is_claimed
        assert recover_dead_runs(instance) == [recycled]  # the child still runs
        assert _slot_holders(instance) == {dead}
        child.kill()
        child.wait()
        assert recover_dead_runs(instance) == [dead]
        status = {run_id: instance.get_run_by_id(run_id).status for run_id in (alive, recycled, other_host, dead)}
        assert status == {alive: DagsterRunStatus.STARTED, recycled: DagsterRunStatus.FAILURE,
                          other_host: DagsterRunStatus.STARTED, dead: DagsterRunStatus.FAILURE}
        assert _slot_holders(instance) == set()
        # a run marked failed by hand (the UI) still holding a slot: the slot is freed too
        finished = _add_run(instance, process_tags())
        assert storage.claim_concurrency_slot(POOL, finished, "marts").is_claimed
        instance.report_run_failed(instance.get_run_by_id(finished))
        assert _slot_holders(instance) == {finished}
        recover_dead_runs(instance)
        assert _slot_holders(instance) == set()
