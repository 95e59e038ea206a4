"""Temp files of a write killed mid-way are swept; finished files and writes in progress are not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from watershop_dagster import lake
from watershop_dagster.lake_sweep import TEMP_FILE, sweep_temp_files

# A writer that is killed after its temp file is complete but before the rename (as kill -9 or a
# power cut would): os.replace is made to wait forever in the child process only.
KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import polars as pl
    from watershop_dagster import lake

    def hang(*_args):
        print("writing", flush=True)
        time.sleep(3600)

    os.replace = hang
    lake.write_partition(pl.DataFrame({"x": list(range(1000))}), sys.argv[1], "transactions",
                         shop_id="s1", date="2024-01-02")
    """
)


def kill_a_writer_mid_write(lake_root: Path) -> list[Path]:
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(lake_root)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    return [p for p in lake_root.rglob("*") if p.is_file()]


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_write_leaves_a_temp_file_that_the_sweep_removes(tmp_path: Path):
    lake_root = tmp_path / "lake"
    left = kill_a_writer_mid_write(lake_root)
    assert len(left) == 1 and TEMP_FILE.match(left[0].name), left  # the naming the sweep relies on
    assert not lake.partition_file(lake_root, "transactions", shop_id="s1", date="2024-01-02").exists()

    fresh = sweep_temp_files(lake_root)  # just written: could be a write in progress elsewhere
    assert fresh.removed == [] and fresh.kept_recent == left and left[0].exists()

    age(left[0], 2 * 3600)
    swept = sweep_temp_files(lake_root, older_than=timedelta(hours=1))
    assert swept.removed == left and swept.freed_bytes > 0 and not left[0].exists()

    # the next run writes the partition normally
    path = lake.write_partition(pl.DataFrame({"x": [1]}), lake_root, "transactions", shop_id="s1", date="2024-01-02")
    assert pl.read_parquet(path)["x"].to_list() == [1]


def test_only_the_writers_temp_files_are_touched(tmp_path: Path):
    part = lake.write_partition(pl.DataFrame({"x": [1]}), tmp_path, "ds", shop_id="s1", date="2024-01-02")
    folder = part.parent
    others = [
        folder / "notes.tmp",                                  # a user's file
        folder / ".part.parquet.tmp",                          # no uuid
        folder / ".part.parquet.0123456789abcdef0123456789ABCDEF.tmp",  # not lowercase hex
        folder / "part.parquet.0123456789abcdef0123456789abcdef.tmp",   # not hidden
    ]
    stale = folder / ".part.parquet.0123456789abcdef0123456789abcdef.tmp"
    for path in [*others, stale]:
        path.write_bytes(b"x")
        age(path, 10 * 3600)
    age(part, 10 * 3600)
    result = sweep_temp_files(tmp_path)
    assert result.removed == [stale]
    assert all(path.exists() for path in [part, *others])


def test_missing_root_and_symlinked_folders(tmp_path: Path):
    assert sweep_temp_files(tmp_path / "nowhere").removed == []
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / ".x.0123456789abcdef0123456789abcdef.tmp"
    victim.write_bytes(b"x")
    age(victim, 10 * 3600)
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "link").symlink_to(outside, target_is_directory=True)
    assert sweep_temp_files(tmp_path / "lake").removed == [] and victim.exists()
