"""Crash recovery for runs executed in the `watershop` process itself (execute_in_process).

A run executed in-process has no run worker that Dagster's run monitoring can check: when the
process is killed the run stays STARTED and keeps its pool slots (duckdb_build allows one), so
every later marts build waits forever. Each run therefore records which process runs it
(pid, host, the process's start time, so a recycled pid is not mistaken for it);
`recover_dead_runs` fails the runs whose process is gone and frees their slots, and frees
slots still held by runs that already finished. `RangeGuard` watches the in-process runs: it
says which run holds the slot it waits for, recovers dead holders while it waits, and turns
SIGINT/SIGTERM into a prompt stop that leaves the run CANCELED with its slots freed.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

PID_TAG = "watershop/pid"
HOST_TAG = "watershop/host"
PROCESS_START_TAG = "watershop/process_start"  # /proc start time in clock ticks since boot
PROCESS_GROUP_TAG = "watershop/pgid"  # the dead process's children (dbt) are in its group
ORPHAN_STOP_SECONDS = 10.0
FINISHED_STATUSES = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
UNFINISHED_STATUSES = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
WAIT_REPORT_AFTER_SECONDS = 3.0  # a slot wait longer than this is reported, then every REPEAT
WAIT_REPORT_REPEAT_SECONDS = 30.0
WATCH_INTERVAL_SECONDS = 0.5
# How often the pool state is read: each look costs ~16 ms CPU (two storage queries), every 0.5 s
# that was ~3 % of a core for the whole of every run; a wait is reported only after 3 s anyway.
SLOT_CHECK_SECONDS = 2.0
INTERRUPT_GRACE_SECONDS = 8.0  # time for an interrupted step to unwind before a hard stop
INTERRUPTED_EXIT_CODE = 130


def _process_start(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat), None when there is no such process."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return None
    except OSError:
        return ""  # no /proc access: fall back to pid existence
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags() -> dict[str, str]:
    """Tags that let a later process tell whether the run's process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(),
            PROCESS_START_TAG: _process_start(os.getpid()) or "", PROCESS_GROUP_TAG: str(os.getpgrp())}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_orphans(tags: dict[str, str]) -> None:
    """Stop what a killed `watershop run` left running (a dbt build still writing the DuckDB file
    would make the next marts build fail on its lock). Only when the dead process led its own
    process group (a shell job) and its pid is not reused: then the group holds only its orphans."""
    pid, pgid = int(tags[PID_TAG]), int(tags.get(PROCESS_GROUP_TAG, "0") or 0)
    if pgid != pid or _process_start(pid) is not None or not _group_alive(pgid):
        return
    _say(f"stopping the processes left by dead pid {pid} (process group {pgid})")
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + ORPHAN_STOP_SECONDS
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.2)


def run_process_alive(tags: dict[str, str]) -> bool | None:
    """True/False for a run started by a watershop process on this host; None when unknowable."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    pid = int(tags[PID_TAG])
    started = _process_start(pid)
    if started is None:
        return False
    if started == "" or not tags.get(PROCESS_START_TAG):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return started == tags[PROCESS_START_TAG]


def _free_slots(instance: DagsterInstance, run_id: str) -> None:
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def recover_dead_runs(instance: DagsterInstance) -> list[str]:
    """Fail the unfinished runs whose watershop process on this host is gone, free their pool
    slots, and free slots still held by finished or deleted runs. Returns the failed run ids."""
    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=UNFINISHED_STATUSES, tags={HOST_TAG: socket.gethostname()})):
        if run_process_alive(run.tags) is False:
            stop_orphans(run.tags)
            instance.report_run_failed(
                run, f"The process running this run (pid {run.tags[PID_TAG]}) is gone; marked failed by watershop.")
            _free_slots(instance, run.run_id)
            failed.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.status in FINISHED_STATUSES:
                storage.free_concurrency_slots_for_run(run_id)
    return failed


def slot_holders(instance: DagsterInstance, run_id: str) -> list[str]:
    """For each pool where `run_id` waits for a slot: which runs hold it, readable."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    lines = []
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        if not any(s.run_id == run_id and s.assigned_timestamp is None for s in info.pending_steps):
            continue
        for slot in info.claimed_slots:
            holder = instance.get_run_by_id(slot.run_id)
            status = holder.status.value if holder else "DELETED"
            job = holder.job_name if holder else "?"
            pid = f", pid {holder.tags[PID_TAG]} on {holder.tags.get(HOST_TAG)}" if holder and PID_TAG in holder.tags else ""
            lines.append(f"pool {pool!r} (limit {info.limit}) is held by run {slot.run_id} "
                         f"(job {job}, step {slot.step_key}, {status}{pid})")
    return lines


def _say(message: str) -> None:
    """To the terminal itself: the CLI sends the runs' own output (sys.stderr too) to its log file."""
    print(f"watershop: {message}", file=sys.__stderr__, flush=True)


class RangeGuard:
    """Guards the in-process runs of one `watershop run` (see the module docstring).

    Dagster swallows SIGINT/SIGTERM while it executes a run (it only checks at step boundaries, and
    never while a step waits for a pool slot), so signals are also observed through a wakeup fd."""

    def __init__(self, instance: DagsterInstance):
        self.instance = instance
        self.interrupted = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._saved: list = []

    def __enter__(self) -> RangeGuard:
        if threading.current_thread() is threading.main_thread():
            self._saved = [signal.signal(signal.SIGTERM, signal.default_int_handler),
                           signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)]
        return self

    def __exit__(self, *exc) -> None:
        if self._saved:
            signal.signal(signal.SIGTERM, self._saved[0])
            signal.set_wakeup_fd(self._saved[1])
        self._reader.close()
        self._writer.close()

    def _signalled(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._reader], [], [], timeout)
        if not ready:
            return False
        data = self._reader.recv(64)
        return any(signum in (signal.SIGINT, signal.SIGTERM) for signum in data)

    def raise_if_interrupted(self) -> None:
        if self.interrupted:
            raise KeyboardInterrupt

    @contextmanager
    def watch(self, run_id: str):
        """While the run with this id executes in this process: report and recover slot waits,
        stop on SIGINT/SIGTERM."""
        done = threading.Event()
        # one look from this thread first: the storage queries import SQLAlchemy modules lazily, and the
        # same imports racing between the guard and the run's thread can see a partially initialized module
        self._slot_holders(run_id)
        thread = threading.Thread(target=self._watch, args=(run_id, done), name="watershop-guard", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            run = self.instance.get_run_by_id(run_id)
            if run is not None and run.status in FINISHED_STATUSES:
                _free_slots(self.instance, run_id)  # a failed or interrupted step must not keep a slot
        self.raise_if_interrupted()

    def _slot_holders(self, run_id: str) -> list[str] | None:
        """slot_holders, or None when the pool state cannot be read now (a busy SQLite storage: the
        guard looks again on its next tick)."""
        try:
            return slot_holders(self.instance, run_id)
        except Exception as exc:
            _say(f"could not read pool state: {exc}")
            return None

    def _watch(self, run_id: str, done: threading.Event) -> None:
        waiting_since = interrupted_at = None
        last_report = 0.0
        next_slot_check = time.monotonic() + SLOT_CHECK_SECONDS
        while not done.is_set():
            if self._signalled(WATCH_INTERVAL_SECONDS):  # the wakeup fd hears signals Dagster's handlers capture
                self.interrupted = True
            if done.is_set():
                return
            now = time.monotonic()
            if self.interrupted:
                if interrupted_at is None:
                    interrupted_at = now
                    _say(f"interrupted: stopping run {run_id}")
                # a run waiting for a slot runs no step: nothing to unwind, stop now
                if waiting_since is not None or now - interrupted_at > INTERRUPT_GRACE_SECONDS:
                    self._hard_stop(run_id)
                continue
            if now < next_slot_check:
                continue
            next_slot_check = now + SLOT_CHECK_SECONDS
            holders = self._slot_holders(run_id)
            if holders is None:
                continue
            if not holders:
                waiting_since = None
                continue
            waiting_since = waiting_since or now
            if now - waiting_since < WAIT_REPORT_AFTER_SECONDS:
                continue
            recovered = recover_dead_runs(self.instance)
            if recovered:
                _say(f"failed dead runs {', '.join(recovered)} and freed their slots")
                continue
            if now - last_report >= WAIT_REPORT_REPEAT_SECONDS:
                last_report = now
                _say(f"run {run_id} waits for a slot: " + "; ".join(holders))

    def _hard_stop(self, run_id: str) -> None:
        """The main thread is stuck where Dagster never checks interrupts (a pool wait): end the run
        as CANCELED, free its slots and leave."""
        run = self.instance.get_run_by_id(run_id)
        if run is not None and run.status not in FINISHED_STATUSES:
            self.instance.report_run_canceled(run, "Interrupted (SIGINT/SIGTERM); canceled by watershop.")
        _free_slots(self.instance, run_id)
        _say(f"run {run_id} canceled and its slots freed")
        os._exit(INTERRUPTED_EXIT_CODE)
