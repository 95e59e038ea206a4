"""`watershop_daily_celery`: a shop-day run whose steps execute in a real Celery worker process.

The worker is started with the documented command (`dagster-celery worker start -A dagster_celery.app
-y <celery.yaml> -- --pool solo`) against the loopback RabbitMQ; results come back over `rpc://`.
Each test run uses its own queue, so workers of other runs sharing the broker never take its steps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.partitions import shop_day_key
from assets.pos import TRANSACTIONS
from watershop_dagster import lake
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration import celery_jobs
from watershop_dagster.orchestration.instance import DAGSTER_YAML
from watershop_dagster.pos.generate import write_transaction_csvs

CELERY_YAML = Path(__file__).resolve().parents[1] / "deploy" / "celery.yaml"
BROKER = os.environ.get(celery_jobs.BROKER_ENV) or celery_jobs.DEFAULT_BROKER
DAY = date(2025, 3, 1)
CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: north
    timezone: Asia/Kolkata
    prices: {10L: 20, 20L: 35}
"""


def test_the_celery_job_joins_the_code_location_only_with_a_broker(monkeypatch):
    monkeypatch.delenv(celery_jobs.BROKER_ENV, raising=False)
    assert not celery_jobs.distributed_definitions().jobs
    monkeypatch.setenv(celery_jobs.BROKER_ENV, "pyamqp://user:secret@broker:5672//")
    monkeypatch.setenv(celery_jobs.QUEUE_ENV, "shops")
    job, vision = celery_jobs.distributed_definitions().jobs
    assert (job.name, vision.name) == (celery_jobs.CELERY_JOB, celery_jobs.VISION_CELERY_JOB)
    assert job.executor_def.name == vision.executor_def.name == "celery"
    execution = job.config["execution"]["config"]
    # The URL (maybe with a password) is read from the environment by the run, never shown in the UI.
    assert execution["broker"] == {"env": celery_jobs.BROKER_ENV}
    assert execution["backend"] == celery_jobs.DEFAULT_BACKEND
    # a worker takes a step only when free, so camera-days spread over workers
    assert execution["config_source"] == {"task_default_queue": "shops", "task_acks_late": True,
                                          "worker_prefetch_multiplier": 1}


def _safe(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)  # the password masked, for messages


def _broker_reachable() -> str | None:
    from kombu import Connection

    try:
        with Connection(BROKER, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure means no broker to test against
        return f"{type(exc).__name__}: {exc}"
    return None


def _delete_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=3) as conn:
        conn.default_channel.queue_delete(queue)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_worker_group(worker: subprocess.Popen, timeout: float = 30.0) -> None:
    """Warm shutdown (SIGTERM) of the worker's process group, SIGKILL if it is not gone in time."""
    if not _group_alive(worker.pid):
        return
    os.killpg(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _group_alive(worker.pid) and time.monotonic() < deadline:
        worker.poll()
        time.sleep(0.2)
    if _group_alive(worker.pid):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


@pytest.fixture
def celery_worker(tmp_path, monkeypatch):
    """A worker on a private queue, with its own DAGSTER_HOME (SQLite is enough on one machine)."""
    problem = _broker_reachable()
    if problem:
        pytest.skip(f"RabbitMQ not reachable at {_safe(BROKER)}: {problem}")
    queue = f"watershop_test_{uuid.uuid4().hex[:10]}"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(celery_jobs.BROKER_ENV, BROKER)
    monkeypatch.setenv(celery_jobs.BACKEND_ENV, "rpc://")
    monkeypatch.setenv(celery_jobs.QUEUE_ENV, queue)
    settings = yaml.safe_load(CELERY_YAML.read_text())
    settings["execution"]["config"]["config_source"]["task_default_queue"] = queue
    worker_yaml = tmp_path / "celery.yaml"
    worker_yaml.write_text(yaml.safe_dump(settings))

    name = f"wstest{uuid.uuid4().hex[:6]}"
    log = tmp_path / "worker.log"
    command = [
        str(Path(sys.executable).with_name("dagster-celery")), "worker", "start",
        "-A", "dagster_celery.app", "-y", str(worker_yaml), "-q", queue, "-n", name,
        "--", "--pool", "solo",
    ]
    with log.open("w") as out:
        # dagster-celery starts `celery` by name: the venv's bin must be on PATH
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        worker = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "ready." not in log.read_text():
            assert worker.poll() is None, f"worker exited with {worker.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"worker not ready after 120s:\n{log.read_text()}"
            time.sleep(0.5)
        yield {"process": worker, "name": name, "log": log}
    finally:
        stop_worker_group(worker)
        _delete_queue(queue)


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_shop_day_runs_its_steps_in_a_celery_worker(celery_worker, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(workspace / CONFIG_FILENAME)
    write_transaction_csvs(config, DAY, DAY, seed=5, transactions_per_day=30)
    key = shop_day_key("north", DAY)

    recon_job = celery_jobs.reconstructable_celery_job(workspace / CONFIG_FILENAME)
    job = recon_job.get_definition()
    with dg.DagsterInstance.get() as instance:
        # As a schedule, sensor or the UI launch a partition: its run config is the job's default
        # executor config (from WATERSHOP_CELERY_*), its tags name the partition.
        result = dg.execute_job(
            recon_job,
            instance=instance,
            run_config=job.get_run_config_for_partition_key(str(key)),
            tags=job.get_tags_for_partition_key(str(key), None),
        )
        assert result.success
        assert instance.get_materialized_partitions(TRANSACTIONS) == {str(key)}
        events = result.all_events

    steps = {e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
    assert {"transactions", "customer_registry", "watershop_marts"} <= steps
    # Every step started in one process other than the run's: the worker's (solo pool: its main
    # process), a child of the `dagster-celery worker start` we launched.
    pids = {e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START}
    assert len(pids) == 1 and os.getpid() not in pids
    (worker_pid,) = pids
    ppid = int(Path(f"/proc/{worker_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert ppid == celery_worker["process"].pid
    # ... and the executor names the worker that took each step.
    taken_by = {
        e.step_key: e.event_specific_data.metadata["Celery worker"].value
        for e in events
        if e.event_type == dg.DagsterEventType.ENGINE_EVENT and "in celery worker" in e.message
    }
    assert set(taken_by) == steps
    assert set(taken_by.values()) == {f"{celery_worker['name']}@{os.uname().nodename}"}
    assert celery_worker["log"].read_text().count("Task execute_plan[") >= len(steps)

    rows = lake.read_partition(config.lake_root, "transactions", shop_id="north", date=DAY.isoformat()).height
    assert rows > 0
    assert config.marts_db.exists()


def test_workers_rebuild_the_camera_day_celery_job_from_its_pointer(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG + "    cameras: [counter]\n")
    recon = celery_jobs.reconstructable_vision_celery_job(tmp_path / CONFIG_FILENAME)
    job = recon.get_definition()
    assert job.name == celery_jobs.VISION_CELERY_JOB and job.executor_def.name == "celery"
    assert "vision" in {node.name for node in job.graph.node_defs}
