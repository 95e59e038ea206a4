"""The project's one lock module: exclusive across processes, re-entrant within a thread."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from watershop_dagster import locks

HOLDER = """
import sys, time
from watershop_dagster import locks
with locks.file_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_in_other_process(path, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_another_process_is_kept_out_until_release(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    holder = hold_in_other_process(path, 1.5)
    try:
        with pytest.raises(TimeoutError):
            with locks.file_lock(path, timeout_s=0.2):
                pass
        started = time.monotonic()
        with locks.file_lock(path, timeout_s=10):
            waited = time.monotonic() - started
    finally:
        holder.wait(timeout=10)
    assert waited > 0.5  # got it only once the holder let go


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    path = tmp_path / "x.lock"
    holder = hold_in_other_process(path, 60)
    holder.kill()
    holder.wait(timeout=10)
    with locks.file_lock(path, timeout_s=1):
        pass


def test_re_entrant_within_a_thread(tmp_path):
    with locks.identity_lock(tmp_path, "s1", timeout_s=0.2):
        with locks.identity_lock(tmp_path, "s1", timeout_s=0.2):
            pass
        assert (tmp_path / "locks" / "identity-s1.lock").exists()


def test_build_lock_sits_beside_the_build_file(tmp_path):
    build_db = tmp_path / "warehouse" / "build.duckdb"
    with locks.build_lock(build_db) as path:
        assert path == build_db.parent / ".build.lock"
