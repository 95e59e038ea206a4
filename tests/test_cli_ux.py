"""The CLI as a user meets it: progress output, a quiet terminal, and `watershop status`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from watershop_dagster import catalog, lake
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.demo import BROKEN_EXPORT
from watershop_dagster.orchestration.run_cli import quarantine_warnings
from watershop_dagster.orchestration.status import PartitionProblem, fix_commands
from watershop_dagster.pos.generate import write_transaction_csvs
from watershop_dagster.progress import DBT_MODELS, SHOP_DAYS, PlainProgress, terminal_progress
from watershop_dagster.terminal import DbtOutputSink

START, END = date(2025, 3, 1), date(2025, 3, 2)
CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: north
    timezone: Asia/Kolkata
    prices: {10L: 20, 20L: 35}
"""
WATERSHOP = str(Path(sys.executable).parent / "watershop")


class Recorder:
    def __init__(self):
        self.calls = []

    def stage_started(self, name, total):
        self.calls.append(("start", name, total))

    def advanced(self, name, n=1, detail=None):
        self.calls.append(("advance", name, detail))

    def warned(self, text):
        self.calls.append(("warn", text))

    def finished(self, summary):
        self.calls.append(("done", summary))


def test_plain_progress_writes_whole_lines_without_escape_codes():
    out = io.StringIO()  # not a TTY
    progress = terminal_progress(out)
    assert isinstance(progress, PlainProgress)
    ticks = iter([0.0, 10.0])
    progress.clock = lambda: next(ticks)
    progress.stage_started(SHOP_DAYS, 4)
    progress.advanced(SHOP_DAYS, detail="north 2025-03-01")
    progress.warned("north 2025-03-01: 3 POS rows quarantined")
    progress.finished("1/1 shop-days succeeded")
    text = out.getvalue()
    assert "\x1b" not in text
    assert text.splitlines() == [
        "shop-days: 0/4",
        "shop-days: 1/4 (north 2025-03-01), about 30s left",
        "warning: north 2025-03-01: 3 POS rows quarantined",
        "1/1 shop-days succeeded",
    ]


def test_dbt_output_goes_to_the_log_and_its_node_lines_advance_the_dbt_bar():
    log, recorder = io.StringIO(), Recorder()
    sink = DbtOutputSink(log, recorder)
    sink.write("Running with dbt=1.11.16\n1 of 2 START sql view model staging.stg_x ..... [RUN]\n")
    sink.write("1 of 2 OK created sql view model staging.stg_x ..... [OK in 0.70s]\n2 of 2 FAIL 1 not_null_x ")
    sink.write("...... [FAIL 1 in 0.1s]\n")
    assert "Running with dbt" in log.getvalue()
    assert recorder.calls[0] == ("start", DBT_MODELS, 2)
    assert [c for c in recorder.calls if c[0] == "advance"] == [
        ("advance", DBT_MODELS, "staging.stg_x"), ("advance", DBT_MODELS, "not_null_x")]
    assert ("warn", "dbt fail: not_null_x") in recorder.calls


def test_fix_commands_collapse_contiguous_days_per_shop():
    problems = [PartitionProblem("north", asset, date(2025, 3, d), "missing", "")
                for asset in ("transactions", "marts") for d in (1, 2, 3, 5)]
    problems.append(PartitionProblem("south", "marts", date(2025, 3, 2), "stale", ""))
    assert fix_commands(problems) == [
        "watershop run --from 2025-03-01 --to 2025-03-03 --shop north",
        "watershop run --from 2025-03-05 --to 2025-03-05 --shop north",
        "watershop run --from 2025-03-02 --to 2025-03-02 --shop south",
    ]


@pytest.fixture(scope="module")
def ran_workspace(tmp_path_factory):
    """A POS-only shop, two days run through the real CLI in a subprocess (not a TTY)."""
    root = tmp_path_factory.mktemp("cliux")
    (root / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(root / CONFIG_FILENAME)
    write_transaction_csvs(config, START, END, seed=5, transactions_per_day=15)
    broken = config.transactions_landing / "north" / f"pos_export_{START}.csv"
    broken.write_text(BROKEN_EXPORT.format(shop="north", day=START))
    env = {**os.environ, "WATERSHOP_CONFIG": str(root / CONFIG_FILENAME)}
    done = subprocess.run([WATERSHOP, "run", "--from", str(START), "--to", str(END)], env=env,
                          capture_output=True, text=True, timeout=900)
    (root / "cli_output.txt").write_text(done.stdout + done.stderr)  # to read when a test fails
    return config, env, done


def _status(env, *args) -> dict:
    done = subprocess.run([WATERSHOP, "status", "--json", *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_run_prints_progress_and_summary_but_no_dagster_or_dbt_logs(ran_workspace):
    _, _, done = ran_workspace
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "2/2 shop-days succeeded" in done.stdout
    assert "shop-days: 2/2" in done.stdout
    assert "dbt models: " in done.stdout
    quarantined = [line for line in done.stdout.splitlines() if "POS rows quarantined" in line]
    assert len(quarantined) == 1 and quarantined[0].startswith("warning: north 2025-03-01: 4 POS rows quarantined")
    assert "transactions_quarantine" in quarantined[0]
    for noise in ("DEBUG", "BetaWarning", "PreviewWarning", "Running with dbt", "partial parsing", "\x1b"):
        assert noise not in output, noise
    log_line = next(line for line in done.stdout.splitlines() if line.startswith("dbt and Dagster logs: "))
    assert "Running with dbt" in Path(log_line.split(": ", 1)[1].split(" (")[0]).read_text()


@pytest.mark.slow
def test_status_shows_missing_days_and_a_stale_partition_after_a_landing_csv_changes(ran_workspace):
    config, env, done = ran_workspace
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    report = _status(env, "--from", "2025-03-01", "--to", "2025-03-03")
    assert {(p["asset"], p["day"], p["state"]) for p in report["problems"]} == {
        ("transactions", "2025-03-03", "missing"), ("marts", "2025-03-03", "missing")}
    assert report["commands"] == ["watershop run --from 2025-03-03 --to 2025-03-03 --shop north"]

    csv = next(config.transactions_landing.glob("north/*2025-03-02*.csv"))
    later = time.time() + 5
    os.utime(csv, (later, later))
    report = _status(env, "--from", "2025-03-01", "--to", "2025-03-03", "--shop", "north")
    assert ("transactions", "2025-03-02", "stale") in {(p["asset"], p["day"], p["state"]) for p in report["problems"]}
    assert report["commands"] == ["watershop run --from 2025-03-02 --to 2025-03-03 --shop north"]


def test_quarantine_warnings_cover_every_camera_of_a_camera_day_dataset(tmp_path: Path):
    """Footage quarantine is partitioned by camera-day: the warning counts every camera's rows (a
    lookup of the shop-day's file alone never found them); clean shop-days give no line."""
    day = date(2025, 3, 1)
    for camera, reasons in {"counter": ["unreadable", "unreadable"], "door": ["empty file"]}.items():
        rows = pl.DataFrame({"path": [f"{camera}/{i}.mp4" for i in range(len(reasons))], "camera": camera,
                             "reason": reasons})
        lake.write_dataset(rows, tmp_path, catalog.FOOTAGE_QUARANTINE, shop_id="north", date=day, camera=camera)
    rejected = pl.DataFrame({"source_file": ["pos.csv"], "source_line": [3], "raw": ["x"], "reason": ["bad amount"]})
    lake.write_dataset(rejected, tmp_path, catalog.TRANSACTIONS_QUARANTINE, shop_id="north", date=day)
    warnings = quarantine_warnings(tmp_path, [("north", day), ("north", date(2025, 3, 2))])
    assert warnings == [
        f"north 2025-03-01: 1 POS rows quarantined - bad amount (1); see "
        f"{tmp_path / 'transactions_quarantine' / 'shop_id=north' / 'date=2025-03-01'}",
        f"north 2025-03-01: 3 footage files quarantined - unreadable (2); empty file (1); see "
        f"{tmp_path / 'footage_quarantine' / 'shop_id=north' / 'date=2025-03-01'}",
    ]
