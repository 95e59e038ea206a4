"""`watershop status`: which shop-day partitions are missing, failed or stale, and the command that
fixes each, read from the Dagster instance's event log and the landing files' mtimes.

missing: never materialized. failed: the latest attempt failed after the latest success.
stale: an input changed after the partition was built (a landing CSV newer than the transactions
partition, or transactions newer than the marts built from them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from itertools import groupby

import dagster as dg

from assets.partitions import shop_day_key
from watershop_dagster.config import WatershopConfig
from watershop_dagster.orchestration.runner import contiguous_stretches, days_between
from watershop_dagster.pos.ingest import files_for_partition

TRANSACTIONS = dg.AssetKey(["lake", "transactions"])
MARTS = dg.AssetKey(["marts", "daily_revenue"])  # every marts model is built by the same dbt run
TRACKED_ASSETS = {"transactions": TRANSACTIONS, "marts": MARTS}
UPSTREAM = {"marts": "transactions"}
RECORDS_LIMIT = 10_000  # the most the event log returns per call

MISSING, FAILED, STALE = "missing", "failed", "stale"


@dataclass(frozen=True)
class PartitionProblem:
    shop_id: str
    asset: str
    day: date
    state: str  # missing | failed | stale
    reason: str


@dataclass(frozen=True)
class Fix:
    shop_id: str
    asset: str
    state: str
    start: date
    end: date
    command: str


def _latest_by_partition(records) -> dict[str, float]:
    latest: dict[str, float] = {}
    for record in records:
        key = record.partition_key
        if key is not None and record.timestamp > latest.get(key, 0.0):
            latest[key] = record.timestamp
    return latest


def _asset_times(instance: dg.DagsterInstance, key: dg.AssetKey, partitions: list[str]):
    where = dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions)
    return (_latest_by_partition(_all_records(instance.fetch_materializations, where)),
            _latest_by_partition(_all_records(instance.fetch_failed_materializations, where)))


def _all_records(fetch, where):
    cursor = None
    while True:
        page = fetch(where, limit=RECORDS_LIMIT, cursor=cursor)
        yield from page.records
        if not page.has_more:
            return
        cursor = page.cursor


def find_problems(config: WatershopConfig, instance: dg.DagsterInstance, shop_ids: list[str],
                  start: date, end: date) -> list[PartitionProblem]:
    days = days_between(start, end)
    problems: list[PartitionProblem] = []
    for shop_id in shop_ids:
        keys = {day: str(shop_day_key(shop_id, day)) for day in days}
        times = {asset: _asset_times(instance, key, list(keys.values())) for asset, key in TRACKED_ASSETS.items()}
        for day, key in keys.items():
            for asset in TRACKED_ASSETS:
                built, failed = times[asset]
                problem = _judge(config, shop_id, day, asset, built.get(key), failed.get(key),
                                 times[UPSTREAM[asset]][0].get(key) if asset in UPSTREAM else None)
                if problem:
                    problems.append(PartitionProblem(shop_id, asset, day, *problem))
    return problems


def _judge(config, shop_id, day, asset, built_at, failed_at, upstream_built_at) -> tuple[str, str] | None:
    if failed_at and (not built_at or failed_at > built_at):
        return FAILED, "the latest run failed"
    if not built_at:
        return MISSING, "never materialized"
    if upstream_built_at and upstream_built_at > built_at:
        return STALE, f"{UPSTREAM[asset]} rebuilt after it"
    if asset == "transactions":
        changed = [p.name for p in files_for_partition(config, shop_id, day) if p.stat().st_mtime > built_at]
        if changed:
            return STALE, f"landing file changed: {', '.join(changed[:3])}"
    return None


def run_command(shop_id: str, start: date, end: date) -> str:
    return f"watershop run --from {start} --to {end} --shop {shop_id}"


def fixes(problems: list[PartitionProblem]) -> list[Fix]:
    """One command per shop, asset and state over each stretch of contiguous days."""
    ordered = sorted(problems, key=lambda p: (p.shop_id, p.asset, p.state, p.day))
    found = []
    for (shop_id, asset, state), group in groupby(ordered, key=lambda p: (p.shop_id, p.asset, p.state)):
        for stretch in contiguous_stretches([p.day for p in group]):
            found.append(Fix(shop_id, asset, state, stretch[0], stretch[-1], run_command(shop_id, stretch[0], stretch[-1])))
    return found


def status_report(problems: list[PartitionProblem]) -> dict:
    return {
        "problems": [{**asdict(p), "day": p.day.isoformat()} for p in problems],
        "stretches": [{**asdict(f), "start": f.start.isoformat(), "end": f.end.isoformat()} for f in fixes(problems)],
        "commands": fix_commands(problems),
    }


def fix_commands(problems: list[PartitionProblem]) -> list[str]:
    """One `watershop run` per shop and stretch of days with any problem: a run rebuilds every asset."""
    commands = []
    for shop_id in sorted({p.shop_id for p in problems}):
        for stretch in contiguous_stretches(list({p.day for p in problems if p.shop_id == shop_id})):
            commands.append(run_command(shop_id, stretch[0], stretch[-1]))
    return commands


def render(problems: list[PartitionProblem], console) -> None:
    """A rich table of problem stretches, then the commands that fix them."""
    from rich.table import Table

    if not problems:
        console.print("every partition in range is materialized and up to date")
        return
    table = Table(title="partitions needing a run")
    for column in ("shop", "asset", "state", "days", "why"):
        table.add_column(column)
    style = {MISSING: "yellow", FAILED: "red", STALE: "cyan"}
    reasons = {(p.shop_id, p.asset, p.state, p.day): p.reason for p in problems}
    for fix in fixes(problems):
        days = str(fix.start) if fix.start == fix.end else f"{fix.start}..{fix.end}"
        table.add_row(fix.shop_id, fix.asset, f"[{style[fix.state]}]{fix.state}[/]", days,
                      reasons[(fix.shop_id, fix.asset, fix.state, fix.start)])
    console.print(table)
    console.print("to fix:")
    for command in fix_commands(problems):
        console.print(f"  {command}", highlight=False, soft_wrap=True)
