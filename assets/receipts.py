"""Supermarket receipts: a shop's pull (database or API) and landing CSVs -> validated lake lines +
quarantine, the shop's versioned category -> zone table, and their checks.

Only workspaces with a `receipts:` shop get these assets; in them, a shop-day of a shop without
receipts materializes nothing. Bodies are module-level functions (callable with
dg.build_asset_context); `build_receipts_definitions` only decorates them with the partitions."""

import hashlib
import json
from collections import defaultdict
from datetime import date

import dagster as dg
import polars as pl

from assets.jobs import DAILY_JOB
from assets.partitions import RANGE_POLICY, WorkspacePartitions, range_metadata, shop_day_key, shop_days
from assets.pos import _markdown_table, _suites_result
from resources import WatershopResource
from watershop_dagster import catalog, lake, quality
from watershop_dagster.config import WatershopConfig
from watershop_dagster.receipts.ingest import ingest_receipt_days, landing_changes, write_zone_map
from watershop_dagster.receipts.pull import PullError, pull_receipts

RECEIPTS = dg.AssetKey(catalog.RECEIPTS.asset_key)
QUARANTINE = dg.AssetKey(catalog.RECEIPTS_QUARANTINE.asset_key)
CATEGORY_ZONES = dg.AssetKey(catalog.CATEGORY_ZONES.asset_key)


def receipts(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Pull each shop's new lines (when it pulls), then validate and land every shop-day of the run.
    A failed pull still lands what was pulled before, then fails the run with the reason."""
    cfg = watershop.config
    by_shop: dict[str, list[date]] = defaultdict(list)
    for shop_id, day in shop_days(context):
        if cfg.shop(shop_id).receipts is not None:
            by_shop[shop_id].append(day)
    landed, rejected, rejects, zones, problems = {}, {}, [], {}, []
    for shop_id, days in by_shop.items():
        if cfg.shop(shop_id).receipts.pulled:
            problems += _pull(context, cfg, shop_id, days)
        for day, result in ingest_receipt_days(cfg, shop_id, days).items():
            landed[(shop_id, day)] = {
                "lines": result.valid.height,
                "receipts": result.valid["receipt_id"].n_unique(),
                "sales": round(float(result.valid["line_total"].sum() or 0.0), 2),
                "path": str(result.valid_path),
                "files": result.files,
            }
            rejected[(shop_id, day)] = {"rejected_rows": result.quarantine.height}
            rejects.append(result.quarantine)
        zone_map, path = write_zone_map(cfg, shop_id)
        zones[shop_id] = {"rows": zone_map.table.height, "path": str(path)}
    reasons = pl.concat([pl.DataFrame(schema={"reason": pl.Utf8}), *[r.select("reason") for r in rejects]]).group_by(
        "reason").len().sort("len", descending=True)
    none = {"receipts": "no shop of this run has a receipts: section"}
    yield dg.MaterializeResult(asset_key=RECEIPTS, metadata=range_metadata(landed) if landed else none)
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        **(range_metadata(rejected) if rejected else none),
        "reasons": dg.MetadataValue.md(_markdown_table(reasons)) if reasons.height else "none"})
    yield dg.MaterializeResult(asset_key=CATEGORY_ZONES, metadata={"shops": dg.MetadataValue.json(zones)})
    if problems:
        raise dg.Failure(description="receipts pull failed: " + "; ".join(problems),
                         metadata={"landed": "lines pulled before and landing CSVs were landed"})


def _pull(context: dg.AssetExecutionContext, cfg: WatershopConfig, shop_id: str, days: list[date]) -> list[str]:
    """Pull the shop's new lines; the problem (if any) as text."""
    try:
        pulled = pull_receipts(cfg, shop_id)
    except PullError as exc:
        context.log.error(f"{shop_id}: {exc}")
        return [f"{shop_id}: {exc}"]
    outside = sorted(pulled.days - set(days))
    context.log.info(f"{shop_id}: pulled {pulled.lines} lines up to {pulled.mark_after}")
    if outside:
        context.log.warning(f"{shop_id}: the pull brought lines of days outside this run; re-run them: "
                            + ", ".join(day.isoformat() for day in outside))
    return []


def receipts_integrity(context: dg.AssetCheckExecutionContext, watershop: WatershopResource) -> dg.AssetCheckResult:
    cfg = watershop.config
    outcomes = {(shop_id, day): quality.receipts_integrity(
                    lake.read_dataset(cfg.lake_root, catalog.RECEIPTS, shop_id=shop_id, date=day), day)
                for shop_id, day in shop_days(context)}
    return _suites_result(outcomes, dg.AssetCheckSeverity.ERROR)


def no_rejected_receipt_lines(context: dg.AssetCheckExecutionContext, watershop: WatershopResource
                              ) -> dg.AssetCheckResult:
    cfg = watershop.config
    df = pl.concat([lake.read_dataset(cfg.lake_root, catalog.RECEIPTS_QUARANTINE, shop_id=shop_id, date=day)
                    for shop_id, day in shop_days(context)])
    reasons = df.group_by("reason").len().sort("len", descending=True)
    return dg.AssetCheckResult(passed=df.height == 0, severity=dg.AssetCheckSeverity.WARN, metadata={
        "rejected_rows": df.height, "reasons": dg.MetadataValue.md(_markdown_table(reasons)) if df.height else "none"})


@dg.sensor(job_name=DAILY_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests the shop-day partitions of new or changed receipt exports in the landing folder.")
def receipts_landing_sensor(context: dg.SensorEvaluationContext, watershop: WatershopResource):
    seen = json.loads(context.cursor) if context.cursor else {}
    current, requests = landing_changes(watershop.config, seen)
    for shop_id, day in sorted(requests):
        state = sorted((name, stat) for name, stat in current.items() if name.startswith(f"{shop_id}/"))
        digest = hashlib.sha1(json.dumps(state).encode()).hexdigest()[:12]
        yield dg.RunRequest(partition_key=shop_day_key(shop_id, day), run_key=f"receipts:{shop_id}:{day}:{digest}")
    context.update_cursor(json.dumps(current))


def build_receipts_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """The receipts assets and checks; none in a workspace without a receipts shop."""
    if not any(shop.receipts is not None for shop in partitions.shops):
        return dg.Definitions()
    shop_day = partitions.shop_day
    return dg.Definitions(
        assets=[dg.multi_asset(
            specs=[
                dg.AssetSpec(RECEIPTS, description="Validated supermarket receipt lines, one Parquet file per "
                             "shop-day.", group_name="receipts", kinds={"parquet", "polars"}),
                dg.AssetSpec(QUARANTINE, description="Receipt lines and files rejected by validation, with the "
                             "reason.", group_name="receipts", kinds={"parquet"}),
                dg.AssetSpec(CATEGORY_ZONES, description="The shop's versioned category -> zone table "
                             "(valid_from/valid_to), one file per shop.", group_name="receipts", kinds={"parquet"}),
            ],
            partitions_def=shop_day,
            backfill_policy=RANGE_POLICY,
        )(receipts)],
        asset_checks=[
            dg.asset_check(asset=RECEIPTS, blocking=True, partitions_def=shop_day,
                           description="Quality suite: keys present, plausible numbers, line totals, timestamps inside "
                                       "the local day.")(receipts_integrity),
            dg.asset_check(asset=QUARANTINE, partitions_def=shop_day,
                           description="Warns when any receipt line or file of the shop-day was rejected.")(
                no_rejected_receipt_lines),
        ],
        sensors=[receipts_landing_sensor],
    )
