"""POS transactions: landing CSVs -> validated lake dataset + quarantine, checks and a landing sensor.

Bodies are module-level functions (callable with dg.build_asset_context); `build_pos_definitions`
only decorates them with the workspace's partitions."""

import hashlib
import json
from datetime import date

import dagster as dg
import polars as pl

from assets.jobs import DAILY_JOB
from assets.partitions import RANGE_POLICY, WorkspacePartitions, range_metadata, shop_day_key, shop_days
from resources import WatershopResource
from watershop_dagster import catalog, lake, quality
from watershop_dagster.config import WatershopConfig
from watershop_dagster.pos.ingest import (
    ingest_partition,
    landing_files,
    parse_date_from_name,
    rows_dates,
)

TRANSACTIONS = dg.AssetKey(catalog.TRANSACTIONS.asset_key)
QUARANTINE = dg.AssetKey(catalog.TRANSACTIONS_QUARANTINE.asset_key)


def transactions(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Ingest every landing CSV of each shop-day; bad rows go to quarantine, valid rows always land."""
    cfg = watershop.config
    landed, rejected, rejects = {}, {}, []
    for shop_id, day in shop_days(context):
        result = ingest_partition(cfg, shop_id, day)
        landed[(shop_id, day)] = {
            "rows": result.valid.height,
            "amount": float(result.valid["amount"].sum() or 0.0),
            "path": str(lake.partition_file(cfg.lake_root, catalog.TRANSACTIONS.name, shop_id=shop_id,
                                            date=day.isoformat())),
            "files": result.files,
        }
        rejected[(shop_id, day)] = {"rejected_rows": result.rejected.height}
        rejects.append(result.rejected)
    reasons = pl.concat(rejects).group_by("reason").len().sort("len", descending=True)
    metadata = range_metadata(landed)
    if len(landed) == 1:
        metadata = {**metadata, "files": dg.MetadataValue.json(metadata["files"]),
                    "path": dg.MetadataValue.path(metadata["path"])}
    yield dg.MaterializeResult(asset_key=TRANSACTIONS, metadata=metadata)
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        metadata={
            **range_metadata(rejected),
            "reasons": dg.MetadataValue.md(_markdown_table(reasons)) if reasons.height else "none",
        },
    )


def transactions_integrity(context: dg.AssetCheckExecutionContext, watershop: WatershopResource) -> dg.AssetCheckResult:
    outcomes = {(shop_id, day): quality.transactions_integrity(
                    _read(watershop.config, shop_id, day, catalog.TRANSACTIONS), day)
                for shop_id, day in shop_days(context)}
    return _suites_result(outcomes, dg.AssetCheckSeverity.ERROR)


def amount_matches_price(context: dg.AssetCheckExecutionContext, watershop: WatershopResource) -> dg.AssetCheckResult:
    cfg = watershop.config
    outcomes = {(shop_id, day): quality.amount_matches_price(
                    _read(cfg, shop_id, day, catalog.TRANSACTIONS), cfg.shop(shop_id))
                for shop_id, day in shop_days(context)}
    return _suites_result(outcomes, dg.AssetCheckSeverity.WARN)


def no_rejected_rows(context: dg.AssetCheckExecutionContext, watershop: WatershopResource) -> dg.AssetCheckResult:
    df = pl.concat([_read(watershop.config, shop_id, day, catalog.TRANSACTIONS_QUARANTINE)
                    for shop_id, day in shop_days(context)])
    reasons = df.group_by("reason").len().sort("len", descending=True)
    return dg.AssetCheckResult(
        passed=df.height == 0, severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_rows": df.height, "reasons": dg.MetadataValue.md(_markdown_table(reasons)) if df.height else "none"},
    )


@dg.sensor(job_name=DAILY_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests the shop-day partitions of new or changed POS files in the landing folder.")
def transactions_landing_sensor(context: dg.SensorEvaluationContext, watershop: WatershopResource):
    cfg = watershop.config
    seen = json.loads(context.cursor) if context.cursor else {}
    current, requests = landing_changes(cfg, seen)
    for shop_id, day in sorted(requests):
        yield dg.RunRequest(
            partition_key=shop_day_key(shop_id, day),
            run_key=f"transactions:{shop_id}:{day}:{_digest(current, shop_id)}",
        )
    context.update_cursor(json.dumps(current))


def build_pos_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """The POS asset and its checks on the workspace's shop-day partitions."""
    shop_day = partitions.shop_day
    return dg.Definitions(
        assets=[dg.multi_asset(
            specs=[
                dg.AssetSpec(TRANSACTIONS, description="Validated POS transactions, one Parquet file per shop-day.",
                             group_name="pos", kinds={"parquet", "polars"}),
                dg.AssetSpec(QUARANTINE, description="POS rows and files rejected by validation, with the reason.",
                             group_name="pos", kinds={"parquet"}),
            ],
            partitions_def=shop_day,
            backfill_policy=RANGE_POLICY,
        )(transactions)],
        asset_checks=[
            dg.asset_check(asset=TRANSACTIONS, blocking=True, partitions_def=shop_day,
                           description="Quality suite: unique ids, allowed values, timestamps inside the shop's "
                                       "local day.")(
                transactions_integrity),
            dg.asset_check(asset=TRANSACTIONS, partitions_def=shop_day,
                           description="Quality suite: amount equals the configured price per can size times "
                                       "the cans.")(
                amount_matches_price),
            dg.asset_check(asset=QUARANTINE, partitions_def=shop_day,
                           description="Warns when any landing row or file of the shop-day was rejected.")(
                no_rejected_rows),
        ],
        sensors=[transactions_landing_sensor],
    )


def landing_changes(config: WatershopConfig, seen: dict[str, list]) -> tuple[dict[str, list], set[tuple[str, date]]]:
    """Files' (mtime, size) now, and the shop-days touched by files that are new or changed since `seen`."""
    current: dict[str, list] = {}
    requests: set[tuple[str, date]] = set()
    for shop_id in config.shop_ids:
        for path in landing_files(config, shop_id):
            stat = path.stat()
            key = f"{shop_id}::{path}"
            current[key] = [stat.st_mtime_ns, stat.st_size]
            if seen.get(key) == current[key]:
                continue
            named = parse_date_from_name(path)
            days = {named} if named else rows_dates(path, config.shop(shop_id), config.partitions_start)
            requests.update((shop_id, day) for day in days if day >= config.partitions_start)
    return current, requests


def _digest(current: dict[str, list], shop_id: str) -> str:
    state = sorted((k, v) for k, v in current.items() if k.startswith(f"{shop_id}::"))
    return hashlib.sha1(json.dumps(state).encode()).hexdigest()[:12]


def _read(config: WatershopConfig, shop_id: str, day: date, dataset: catalog.Dataset) -> pl.DataFrame:
    return lake.read_dataset(config.lake_root, dataset, shop_id=shop_id, date=day)


def _suites_result(outcomes: dict[tuple[str, date], quality.SuiteOutcome], severity) -> dg.AssetCheckResult:
    """One check result for the run's shop-days: passed only if every day's suite passed."""
    if len(outcomes) == 1:
        outcome = next(iter(outcomes.values()))
        return dg.AssetCheckResult(passed=outcome.success, severity=severity, metadata={
            "evaluated_rows": outcome.evaluated_rows, "summary": outcome.describe(),
            "failures": dg.MetadataValue.json(outcome.failures)})
    failed = {f"{shop_id} {day}": outcome for (shop_id, day), outcome in sorted(outcomes.items()) if not outcome.success}
    return dg.AssetCheckResult(passed=not failed, severity=severity, metadata={
        "shop_days": len(outcomes),
        "evaluated_rows": sum(outcome.evaluated_rows for outcome in outcomes.values()),
        "summary": f"{len(failed)} of {len(outcomes)} shop-days failed",
        "failures": dg.MetadataValue.json({day: outcome.failures for day, outcome in list(failed.items())[:50]}),
    })


def _markdown_table(df: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines)
