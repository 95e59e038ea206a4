"""Camera-days of 8 cameras over Celery workers: the same runs through 1 worker, then through 2.

How the work spreads: each camera-day is one run of `watershop_vision_celery` (the existing
distributed setup, watershop_dagster/orchestration/celery_jobs.py). A run hands each of its steps
(the vision multi-asset, its checks, the shelf assets) to the broker's queue as one Celery task;
a worker takes it (`dagster-celery worker start` sets prefetch 1, and `--pool solo` runs one task at
a time per worker process; a busy worker may still hold one reserved task). So the camera-days'
heavy steps are meant to spread over the free workers, a worker per core, the vision step itself
with `vision.workers: 1` (one process per camera-day instead of a slice pool inside each worker).
Whether they really spread is what the per-worker counts of vision steps below show.

The bench renders 8 cameras of synthetic supermarket footage (1280x720 15 fps by default) into a
temporary workspace, starts N real workers (the documented command, private queue, SQLite Dagster
instance), launches the 8 camera-day runs at once (each in its own process, as a run launcher
does) and waits for them, for N = 1 and N = 2. Printed per N: wall seconds, CPU seconds (workers,
and the run processes that only orchestrate), speed-up of 2 over 1 worker, and how many tasks
(and heavy vision steps) each worker took. Workers are stopped (SIGTERM, then SIGKILL) and the
queue deleted whatever happens. Needs RabbitMQ (default pyamqp://guest:guest@127.0.0.1:5672//).

    .venv/bin/python bench/bench_celery_workers.py --cameras 8 --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date
from datetime import time as clock
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.test_distributed import stop_worker_group as stop_worker  # noqa: E402 - the test's warm-then-hard stop
from watershop_dagster.orchestration import celery_jobs  # noqa: E402

DAY = date(2025, 3, 4)
SHOP = "market"
CELERY_YAML = REPO / "deploy" / "celery.yaml"
BROKER = os.environ.get(celery_jobs.BROKER_ENV) or celery_jobs.DEFAULT_BROKER
READY_TIMEOUT_S = 180.0
VISION_STEP = "vision"  # the heavy step of a camera-day run
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def write_workspace(folder: Path, cameras: list[str], duration_s: float, size: tuple[int, int], seed: int) -> Path:
    """The workspace config (one worker process per camera-day) and the cameras' footage."""
    from watershop_dagster.config import CONFIG_FILENAME, load_config
    from watershop_dagster.synthetic.supermarket import write_supermarket_day

    config_file = folder / CONFIG_FILENAME
    config_file.write_text(yaml.safe_dump({
        "partitions_start": "2025-01-01", "vision": {"workers": 1},
        "shops": [{"id": SHOP, "timezone": "UTC", "opening_time": "09:00:00", "cameras": cameras}]}))
    config = load_config(config_file)
    write_supermarket_day(config.footage_root, config.shop(SHOP), DAY, start=clock(9, 0), duration_s=duration_s,
                          size=size, shoppers_per_minute=6.0, still_shoppers=0, seed=seed)
    return config_file


# -- workers ------------------------------------------------------------------------------------


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + sys, with reaped children) of the live processes of a process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def start_workers(n: int, queue: str, folder: Path, env: dict) -> list[tuple[subprocess.Popen, str, Path]]:
    settings = yaml.safe_load(CELERY_YAML.read_text())
    settings["execution"]["config"]["config_source"]["task_default_queue"] = queue
    worker_yaml = folder / "celery.yaml"
    worker_yaml.write_text(yaml.safe_dump(settings))
    workers = []
    for index in range(n):
        name = f"bench{index + 1}-{uuid.uuid4().hex[:4]}"
        log = folder / f"{name}.log"
        command = [str(Path(sys.executable).with_name("dagster-celery")), "worker", "start", "-A", "dagster_celery.app",
                   "-y", str(worker_yaml), "-q", queue, "-n", name, "--", "--pool", "solo"]
        with log.open("w") as out:
            workers.append((subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True), name, log))
    deadline = time.monotonic() + READY_TIMEOUT_S
    for process, name, log in workers:
        while "ready." not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} not ready:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
    return workers


def delete_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=3) as conn:
        conn.default_channel.queue_delete(queue)


# -- runs ---------------------------------------------------------------------------------------


def launch_run(config_file: str, camera: str) -> None:
    """One camera-day run on the Celery executor (this script re-invoked); prints step -> worker as JSON."""
    import dagster as dg

    from assets.partitions import camera_day_key

    recon_job = celery_jobs.reconstructable_vision_celery_job(config_file)
    job = recon_job.get_definition()
    key = str(camera_day_key(SHOP, camera, DAY))
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(recon_job, instance=instance, run_config=job.get_run_config_for_partition_key(key),
                                tags=job.get_tags_for_partition_key(key, None))
        taken_by = {e.step_key: e.event_specific_data.metadata["Celery worker"].value for e in result.all_events
                    if e.event_type == dg.DagsterEventType.ENGINE_EVENT and "in celery worker" in e.message}
    print(json.dumps({"camera": camera, "success": result.success, "taken_by": taken_by}))


def launch_runs(config_file: Path, cameras: list[str], concurrent: int, logs: Path, env: dict) -> list[str]:
    """The camera-day runs, at most `concurrent` at a time (the instance's max_concurrent_runs), in
    their own processes; their JSON lines, in camera order. A failed run's log stays in `logs`."""
    logs.mkdir(parents=True, exist_ok=True)
    pending, running, outputs = list(cameras), {}, {}
    while pending or running:
        while pending and len(running) < concurrent:
            camera = pending.pop(0)
            with (logs / f"{camera}.log").open("w") as err:
                running[camera] = subprocess.Popen([sys.executable, __file__, "--launch-run", str(config_file), camera],
                                                   env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        for camera, run in list(running.items()):
            if run.poll() is not None:
                outputs[camera] = run.communicate()[0]
                del running[camera]
        time.sleep(0.2)
    return [outputs[camera] for camera in cameras]


def run_all(config_file: Path, cameras: list[str], n_workers: int, concurrent_runs: int, folder: Path,
            env: dict) -> dict:
    queue = f"watershop_bench_{uuid.uuid4().hex[:10]}"
    run_env = {**env, celery_jobs.QUEUE_ENV: queue}
    workers = []
    try:
        workers = start_workers(n_workers, queue, folder, run_env)
        cpu0 = {name: group_cpu_s(p.pid) for p, name, _ in workers}
        runs_cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        outputs = launch_runs(config_file, cameras, concurrent_runs, folder / f"runs_{n_workers}", run_env)
        wall = time.perf_counter() - began
        runs_cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = {name: group_cpu_s(p.pid) - cpu0[name] for p, name, _ in workers}
    finally:
        for process, _, _ in workers:
            stop_worker(process)
        delete_queue(queue)
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs if out.strip()]
    tasks, heavy = Counter(), Counter()
    for row in results:
        for step, worker in row["taken_by"].items():
            name = worker.split("@", 1)[0]
            tasks[name] += 1
            heavy[name] += step == VISION_STEP
    return {
        "workers": n_workers, "wall_s": wall, "worker_cpu": worker_cpu,
        "runs_cpu_s": (runs_cpu1.ru_utime + runs_cpu1.ru_stime) - (runs_cpu0.ru_utime + runs_cpu0.ru_stime),
        "succeeded": sum(row["success"] for row in results), "runs": len(cameras), "tasks": tasks, "heavy": heavy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of footage per camera-day")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--seed", type=int, default=5101)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrent-runs", type=int, default=0,
                        help="camera-day runs in flight at once (max_concurrent_runs; default: the worker count)")
    parser.add_argument("--launch-run", nargs=2, metavar=("CONFIG", "CAMERA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.launch_run:
        launch_run(*args.launch_run)
        return

    import dagster as dg

    from watershop_dagster.config import load_config
    from watershop_dagster.orchestration.instance import DAGSTER_YAML

    cameras = [f"cam{i + 1}" for i in range(args.cameras)]
    folder = Path(tempfile.mkdtemp(prefix="bench_celery_"))
    try:
        began = time.perf_counter()
        config_file = write_workspace(folder, cameras, args.duration, (args.width, args.height), args.seed)
        print(f"{args.cameras} cameras x {args.duration:g} s of {args.width}x{args.height} 15 fps supermarket footage "
              f"(rendered in {time.perf_counter() - began:.0f} s); broker {BROKER.split('@')[-1]}", flush=True)
        rows = []
        for n in args.workers:
            home = folder / f"dagster_home_{n}"
            home.mkdir()
            (home / "dagster.yaml").write_text(DAGSTER_YAML)
            with dg.DagsterInstance.from_config(str(home)):
                pass  # create the SQLite storage once: runs opening a fresh one at the same moment race on it
            shutil.rmtree(load_config(config_file).lake_root, ignore_errors=True)  # each pass computes afresh
            env = {**os.environ, "DAGSTER_HOME": str(home), celery_jobs.BROKER_ENV: BROKER,
                   celery_jobs.BACKEND_ENV: "rpc://", "WATERSHOP_CONFIG": str(config_file),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
            row = run_all(config_file, cameras, n, args.concurrent_runs or n, folder, env)
            rows.append(row)
            footage = args.cameras * args.duration
            cpu = sum(row["worker_cpu"].values())
            print(f"{n} worker(s): {row['succeeded']}/{row['runs']} camera-day runs ok, {row['wall_s']:.1f} s wall "
                  f"({footage / row['wall_s']:.1f}x real time for {footage:.0f} camera-seconds); workers {cpu:.1f} CPU s"
                  f" ({footage / cpu:.1f}x per CPU second), run processes {row['runs_cpu_s']:.1f} CPU s", flush=True)
            for name in sorted(row["worker_cpu"]):
                print(f"  {name}: {row['tasks'][name]} tasks ({row['heavy'][name]} vision steps), "
                      f"{row['worker_cpu'][name]:.1f} CPU s", flush=True)
        if len(rows) > 1:
            base = rows[0]
            for row in rows[1:]:
                print(f"speed-up {row['workers']} vs {base['workers']} worker(s): {base['wall_s'] / row['wall_s']:.2f}x wall"
                      f" (CPU s {sum(base['worker_cpu'].values()):.1f} -> {sum(row['worker_cpu'].values()):.1f})")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
