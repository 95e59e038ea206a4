"""Golden test: the served marts of a small pinned workspace stay identical across refactors.

A workspace is built from FIXED inputs that do not depend on the demo's content: one shop, one
camera, two days, POS CSVs from `pos.generate` and footage from `synthetic.footage.write_day`
(built-in gallery, no shared fixtures), every generator argument spelled out here, plus a
hand-written POS export with broken rows. The whole pipeline runs through the public entry point,
then every table of the served marts file (warehouse/marts.duckdb, schema main) is dumped to
canonical JSON - rows sorted, floats rounded to 6 places, decimals and times as strings,
timestamps read in UTC - and compared with tests/golden/marts_snapshot.json.

The snapshot also holds the sha256 of every generated input CSV (POS exports, footage ground
truth): if a generator's output for these arguments changes, the test fails with "inputs changed"
instead of "marts changed", because then the marts are not expected to match.

Regenerate (only when a change of the marts is intended, and say so in the commit):

    WATERSHOP_UPDATE_GOLDEN=1 .venv/bin/pytest -q -p no:logging tests/test_golden_marts.py
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import uuid
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.runner import run_range  # the pipeline's public entry point: imported here only
from watershop_dagster.pos.generate import write_transaction_csvs, write_visit_transactions
from watershop_dagster.synthetic.footage import write_day
from watershop_dagster.synthetic.gallery import default_gallery

pytestmark = pytest.mark.slow

SNAPSHOT = Path(__file__).parent / "golden" / "marts_snapshot.json"
UPDATE_ENV_VAR = "WATERSHOP_UPDATE_GOLDEN"
SHOP, CAMERA = "golden", "counter"
DAYS = [dt.date(2025, 3, 31), dt.date(2025, 4, 1)]  # a new month and a new quarter on day two
SEED = 11
# vision.workers is pinned: the camera-day is cut into one slice per worker.
CONFIG = f"""\
partitions_start: "2025-01-01"
shops:
  - id: {SHOP}
    timezone: Asia/Kolkata
    cameras: [{CAMERA}]
    prices: {{10L: 20, 20L: 35}}
vision:
  workers: 2
"""
POS_HEADER = "transaction_id,timestamp,customer_id,payment_mode,can_size,number_of_cans,amount,payment_status\n"
BROKEN_EXPORT = POS_HEADER + f"""G-BAD-1,{DAYS[-1]} 10:15:00,C9001,Card,20L,1,35,Paid
G-BAD-2,not-a-time,C9002,UPI,20L,1,35,Paid
G-BAD-3,{DAYS[-1]} 11:00:00,C9003,UPI,20L,two,70,Paid
G-BAD-4,{DAYS[-1]} 12:00:00,C9004,UPI,20L,1,35
G-OK-1,{DAYS[-1]} 12:30:00,C9005,upi,20 l,2,70,paid
"""
FLOAT_PLACES = 6
DIFF_ROWS = 5  # rows shown per side of a differing table


def build_inputs(root: Path) -> Path:
    """Write the pinned inputs into a new workspace at `root`; returns its config file."""
    config_file = root / CONFIG_FILENAME
    config_file.write_text(CONFIG)
    config = load_config(config_file)
    shop = config.shop(SHOP)
    write_transaction_csvs(config, DAYS[0], DAYS[-1], seed=SEED, transactions_per_day=12)
    for offset, day in enumerate(DAYS):
        truth = write_day(
            config.footage_root, shop, CAMERA, day, default_gallery(), "plain",
            duration_s=150.0, visits_per_hour=48.0, counter_s=(15.0, 25.0), staff=None,
            size=(640, 360), fps=10.0, workers=1, seed=SEED + offset,
        )  # fmt: skip
        write_visit_transactions(config, SHOP, day, truth, seed=SEED + offset)
        (config.transactions_landing / SHOP / f"extras_{day}.csv").write_text(extra_bills(shop.tz, day, truth))
    (config.transactions_landing / SHOP / f"pos_export_{DAYS[-1]}.csv").write_text(BROKEN_EXPORT)
    return config_file


def extra_bills(tz: dt.tzinfo, day: dt.date, truth: pl.DataFrame) -> str:
    """Hand-made bills the generators do not write: an unpaid walk-in bill at the end of every filmed
    customer visit (a visit paying two bills; a registry customer owing twice) and an unpaid bill of
    POS customer C7001 every day (a POS repeat defaulter)."""
    lines = [f"G-X-{day:%m%d}-0,{day} 19:00:00,C7001,UPI,20L,1,35,Unpaid"]
    ends = truth.filter(pl.col("role") == "customer").sort("counter_end_utc")["counter_end_utc"]
    for number, end in enumerate(ends, start=1):
        local = (end - dt.timedelta(seconds=2)).astimezone(tz)
        lines.append(f"G-X-{day:%m%d}-{number},{local:%Y-%m-%d %H:%M:%S},,Cash,10L,1,20,Unpaid")
    return POS_HEADER + "\n".join(lines) + "\n"


def input_digests(config_file: Path) -> dict[str, str]:
    """sha256 of every generated CSV (POS exports, footage ground truth), by workspace-relative path."""
    config = load_config(config_file)
    files = sorted([*config.transactions_landing.rglob("*.csv"), *config.footage_root.rglob("*.csv")])
    return {str(path.relative_to(config.workspace_dir)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def canonical(value, workspace: str):
    """A JSON value that is the same on every machine and run."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return round(value, FLOAT_PLACES) if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds()}s"
    if isinstance(value, str):
        return value.replace(workspace, "<workspace>")
    if isinstance(value, (list, tuple)):
        return [canonical(item, workspace) for item in value]
    if isinstance(value, dict):
        return {key: canonical(item, workspace) for key, item in value.items()}
    if isinstance(value, (bytes, uuid.UUID)):
        return value.hex() if isinstance(value, bytes) else str(value)
    raise TypeError(f"no canonical form for {type(value).__name__}: {value!r}")


def dump_marts(marts_db: Path, workspace: Path) -> dict[str, dict]:
    """Every mart of the served file's main schema: columns with types and sorted canonical rows."""
    tables = {}
    with duckdb.connect(str(marts_db), read_only=True) as db:
        db.execute("set TimeZone = 'UTC'")
        names = [row[0] for row in db.execute(
            "select table_name from information_schema.tables "  # marts are views over the current build
            "where table_schema = 'main' order by table_name").fetchall()]
        for name in names:
            cursor = db.execute(f'select * from "{name}"')
            columns = [[column[0], str(column[1])] for column in cursor.description]
            rows = [json.dumps(canonical(list(row), str(workspace)), sort_keys=True) for row in cursor.fetchall()]
            rows.sort()
            tables[name] = {
                "columns": columns,
                "row_count": len(rows),
                "sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
                "rows": [json.loads(row) for row in rows],
            }
    return tables


def write_snapshot(snapshot: dict) -> None:
    """One row per line, so a changed snapshot reads as a small git diff."""
    lines = ["{", f'  "inputs": {json.dumps(snapshot["inputs"], indent=4, sort_keys=True)},', '  "marts": {']
    marts = snapshot["marts"]
    for t, (name, table) in enumerate(sorted(marts.items())):
        lines.append(f"    {json.dumps(name)}: {{")
        lines.append(f'      "columns": {json.dumps(table["columns"])},')
        lines.append(f'      "row_count": {table["row_count"]},')
        lines.append(f'      "sha256": {json.dumps(table["sha256"])},')
        rows = [f"        {json.dumps(row)}" for row in table["rows"]]
        lines.append('      "rows": [' + ("\n" + ",\n".join(rows) + "\n      ]" if rows else "]"))
        lines.append("    }" + ("," if t < len(marts) - 1 else ""))
    lines += ["  }", "}", ""]
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text("\n".join(lines))


def describe_input_changes(expected: dict[str, str], actual: dict[str, str]) -> str:
    changed = sorted(p for p in expected.keys() & actual.keys() if expected[p] != actual[p])
    return (f"changed: {changed}; missing: {sorted(expected.keys() - actual.keys())}; "
            f"new: {sorted(actual.keys() - expected.keys())}")


def describe_mart_changes(expected: dict[str, dict], actual: dict[str, dict]) -> str:
    report = []
    for name in sorted(expected.keys() - actual.keys()):
        report.append(f"{name}: missing (expected {expected[name]['row_count']} rows)")
    for name in sorted(actual.keys() - expected.keys()):
        report.append(f"{name}: new table ({actual[name]['row_count']} rows)")
    for name in sorted(expected.keys() & actual.keys()):
        want, got = expected[name], actual[name]
        if want["columns"] != got["columns"]:
            report.append(f"{name}: columns differ\n  expected {want['columns']}\n  actual   {got['columns']}")
        if want["sha256"] == got["sha256"]:
            continue
        want_rows = [json.dumps(row) for row in want["rows"]]
        got_rows = [json.dumps(row) for row in got["rows"]]
        want_set, got_set = set(want_rows), set(got_rows)
        only_want = [row for row in want_rows if row not in got_set]
        only_got = [row for row in got_rows if row not in want_set]
        report.append(
            f"{name}: rows differ ({want['row_count']} expected, {got['row_count']} actual)\n"
            + "".join(f"  - {row}\n" for row in only_want[:DIFF_ROWS])
            + "".join(f"  + {row}\n" for row in only_got[:DIFF_ROWS])
        )
    return "\n".join(report)


@pytest.fixture(scope="module")
def golden_workspace(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The pinned workspace after a full pipeline run; (config file, input digests)."""
    config_file = build_inputs(tmp_path_factory.mktemp("golden"))
    digests = input_digests(config_file)  # before the run: ingest must not be what changed them
    runs = run_range(DAYS[0], DAYS[-1], config_file)
    assert [(r.day, r.failed_steps) for r in runs if not r.success] == []
    return config_file, digests


def test_served_marts_match_the_golden_snapshot(golden_workspace):
    config_file, digests = golden_workspace
    config = load_config(config_file)
    marts = dump_marts(config.marts_db, config.workspace_dir)
    if os.environ.get(UPDATE_ENV_VAR):
        write_snapshot({"inputs": digests, "marts": marts})
        pytest.skip(f"{UPDATE_ENV_VAR} set: rewrote {SNAPSHOT}; run again without it to compare")
    assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}; create it with {UPDATE_ENV_VAR}=1"
    snapshot = json.loads(SNAPSHOT.read_text())
    if snapshot["inputs"] != digests:
        pytest.fail(
            "inputs changed: the pinned generators no longer write the same CSVs for the same arguments, so the "
            f"marts cannot be compared ({describe_input_changes(snapshot['inputs'], digests)}). Restore the "
            f"generators' output, or regenerate the snapshot on the original code with {UPDATE_ENV_VAR}=1.",
            pytrace=False,
        )
    if snapshot["marts"] != marts:
        pytest.fail(f"marts changed:\n{describe_mart_changes(snapshot['marts'], marts)}", pytrace=False)


def test_the_snapshot_covers_every_kind_of_mart():
    """Guards the fixed input itself: the golden run must exercise POS, quarantine, visit and link marts."""
    if not SNAPSHOT.exists():
        pytest.skip(f"no snapshot yet; create it with {UPDATE_ENV_VAR}=1")
    counts = {name: table["row_count"] for name, table in json.loads(SNAPSHOT.read_text())["marts"].items()}
    for mart in ("transactions", "daily_revenue", "quarantine_summary", "visit_log", "daily_visits",
                 "monthly_visits", "quarterly_visits", "recognition_results", "transaction_visit_links",
                 "returning_customers", "total_spent", "repeat_defaulters"):
        assert counts.get(mart, 0) > 0, f"the golden input leaves {mart} empty"


def test_a_failure_names_the_tables_and_rows_that_differ():
    def table(*rows):
        keyed = [json.dumps(row) for row in rows]
        return {"columns": [["shop_id", "VARCHAR"], ["n", "BIGINT"]], "row_count": len(rows),
                "sha256": hashlib.sha256("\n".join(keyed).encode()).hexdigest(), "rows": list(rows)}

    expected = {"a": table(["s1", 1], ["s2", 2]), "gone": table(["s1", 1])}
    actual = {"a": table(["s1", 1], ["s2", 3]), "new": table()}
    report = describe_mart_changes(expected, actual)
    assert "gone: missing (expected 1 rows)" in report and "new: new table (0 rows)" in report
    assert 'a: rows differ (2 expected, 2 actual)\n  - ["s2", 2]\n  + ["s2", 3]' in report
    assert describe_input_changes({"x.csv": "1", "y.csv": "2"}, {"x.csv": "9", "z.csv": "3"}) == \
        "changed: ['x.csv']; missing: ['y.csv']; new: ['z.csv']"
