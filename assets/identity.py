"""Identity: customer registry, visit log and POS links, with checks and retention (the visits of
vip/blocked people, `alerts`, are delivered by `assets/alerts.py`).

Bodies and the retention job are module-level; `build_identity_definitions` only
decorates the bodies with the workspace's shop-day partitions."""

from datetime import date

import dagster as dg
import polars as pl

from assets.partitions import RANGE_POLICY, WorkspacePartitions, range_metadata, shop_days
from assets.pos import TRANSACTIONS
from assets.vision import DETECTIONS, EMBEDDINGS, TRACKS
from resources import WatershopResource
from watershop_dagster import catalog, lake
from watershop_dagster.identity.pipeline import (
    build_customer_registry,
    build_visits,
    link_transactions,
    registry_stability_problems,
    visit_problems,
)
from watershop_dagster.identity.privacy import apply_retention

LEDGER = dg.AssetKey(catalog.CUSTOMER_LEDGER.asset_key)
REGISTRY = dg.AssetKey(catalog.CUSTOMER_REGISTRY.asset_key)
MERGES = dg.AssetKey(catalog.CUSTOMER_MERGES.asset_key)
SIGHTINGS = dg.AssetKey(catalog.KNOWN_PERSON_SIGHTINGS.asset_key)
IDENTITIES = dg.AssetKey(catalog.FACE_IDENTITIES.asset_key)
RECOGNITION = dg.AssetKey(catalog.RECOGNITION_RESULTS.asset_key)
VISITS = dg.AssetKey(catalog.VISITS.asset_key)
ALERTS = dg.AssetKey(catalog.ALERTS.asset_key)
LINKS = dg.AssetKey(catalog.TRANSACTION_VISIT_LINKS.asset_key)
UNPAID_VISITS = dg.AssetKey(catalog.VISITS_WITHOUT_TRANSACTION.asset_key)
POS_MAP = dg.AssetKey(catalog.POS_CUSTOMER_MAP.asset_key)


def customer_registry(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Match each day's faces to known people and earlier customers (days in date order, so the
    registry grows as it would day by day); new people get new stable ids."""
    builds = {(shop_id, day): build_customer_registry(watershop.config, shop_id, day)
              for shop_id, day in shop_days(context)}
    metadata = range_metadata({key: build.metadata() for key, build in builds.items()})
    tracks = sum(build.tracks for build in builds.values())
    for key in (LEDGER, REGISTRY, IDENTITIES, RECOGNITION):
        yield dg.MaterializeResult(asset_key=key, metadata=_jsonable(metadata) if key == REGISTRY else {
            "tracks": tracks})
    yield dg.MaterializeResult(asset_key=MERGES, metadata={"merges": sum(build.merges for build in builds.values())})
    yield dg.MaterializeResult(asset_key=SIGHTINGS, metadata={
        "learned_faces": sum(build.learned_faces for build in builds.values())})


def visits(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Segment each person's sightings into visits; a long absence starts a new visit."""
    builds = {(shop_id, day): build_visits(watershop.config, shop_id, day) for shop_id, day in shop_days(context)}
    yield dg.MaterializeResult(asset_key=VISITS, metadata=_jsonable(range_metadata(
        {key: build.metadata() for key, build in builds.items()})))
    yield dg.MaterializeResult(asset_key=ALERTS, metadata={"alerts": sum(b.alerts for b in builds.values())})


def transaction_links(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Link transactions to visits; report unlinked transactions and visits without payment."""
    builds = {(shop_id, day): link_transactions(watershop.config, shop_id, day)
              for shop_id, day in shop_days(context)}
    yield dg.MaterializeResult(asset_key=LINKS, metadata=_jsonable(range_metadata(
        {key: build.metadata() for key, build in builds.items()})))
    yield dg.MaterializeResult(asset_key=UNPAID_VISITS, metadata={
        "visits": sum(b.visits_without_transaction for b in builds.values())})
    yield dg.MaterializeResult(asset_key=POS_MAP, metadata={
        "pos_customers": sum(b.pos_customers_mapped for b in builds.values())})


def visits_consistent(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    cfg = watershop.config
    problems, visits = [], 0
    for shop_id, day in shop_days(context):
        frame = lake.read_dataset(cfg.lake_root, catalog.VISITS, shop_id=shop_id, date=day)
        visits += frame.height
        day_problems = visit_problems(frame)
        too_long = frame.filter(pl.col("duration_s") > cfg.thresholds.max_visit_hours * 3600).height
        if too_long:
            day_problems.append(f"{too_long} visits longer than {cfg.thresholds.max_visit_hours} h")
        problems += [f"{shop_id} {day}: {problem}" for problem in day_problems]
    return dg.AssetCheckResult(passed=not problems, metadata={"visits": visits,
                                                              "problems": dg.MetadataValue.json(problems[:50])})


def registry_ids_stable(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    problems = [f"{shop_id} {day}: {problem}" for shop_id, day in shop_days(context)
                for problem in registry_stability_problems(watershop.config, shop_id, day)]
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": dg.MetadataValue.json(problems[:50])})


@dg.op(description="Delete embeddings and face crops older than the configured retention.")
def enforce_retention(context: dg.OpExecutionContext, watershop: WatershopResource) -> None:
    report = apply_retention(watershop.config, date.today())
    context.log.info(f"retention {report.audit_id}: rows {report.counts}, files removed {report.files_removed}")


@dg.job(description="Retention of biometric data: embeddings and crops older than the configured days.")
def retention():
    enforce_retention()


retention_schedule = dg.ScheduleDefinition(job=retention, cron_schedule="30 3 * * *",
                                           default_status=dg.DefaultScheduleStatus.RUNNING)


def _spec(key, description, deps=()):
    return dg.AssetSpec(key, description=description, group_name="identity", kinds={"parquet"}, deps=deps)


def build_identity_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """The identity assets and checks on the shop-day partitions, with deps on the same day of every
    camera of the shop (none in a workspace without cameras)."""
    shop_day = partitions.shop_day

    def vision(*keys: dg.AssetKey) -> list[dg.AssetDep]:
        if partitions.camera_to_shop is None:
            return []
        return [dg.AssetDep(key, partition_mapping=partitions.camera_to_shop) for key in keys]

    def shop_day_assets(specs: list[dg.AssetSpec], body) -> dg.AssetsDefinition:
        return dg.multi_asset(specs=specs, partitions_def=shop_day, backfill_policy=RANGE_POLICY)(body)

    return dg.Definitions(
        assets=[
            shop_day_assets([
                _spec(LEDGER, "Append-only per-shop customer ledger with exemplar embeddings (biometric).",
                      vision(EMBEDDINGS, TRACKS)),
                _spec(REGISTRY, "The shop's customer registry as of the day: stable anonymous ids, first/last seen.",
                      [LEDGER]),
                _spec(MERGES, "Customer ids the day's evidence shows are one person: the newer merges into the "
                      "older (audit; readers map ids through it).", [LEDGER]),
                _spec(SIGHTINGS, "Faces of known people clearly seen that day, which they are matched with on "
                      "other days (capped per person; biometric).", [LEDGER]),
                _spec(IDENTITIES, "Identity of every face track of the day (customer, staff, vip, blocked).",
                      [LEDGER]),
                _spec(RECOGNITION, "Why each track got its identity: best and second-best matches, ambiguity.",
                      [LEDGER]),
            ], customer_registry),
            shop_day_assets([
                _spec(VISITS, "Visit log: entry, exit, duration, cameras, faces and confidence per person.",
                      [IDENTITIES, *vision(DETECTIONS)]),
                _spec(ALERTS, "A vip or blocked person entered: one row per visit.", [IDENTITIES]),
            ], visits),
            shop_day_assets([
                _spec(LINKS, "Each POS transaction linked to the visit of the person at the counter.",
                      [VISITS, TRANSACTIONS]),
                _spec(UNPAID_VISITS, "Customer visits without a transaction (possible unpaid visits).", [VISITS]),
                _spec(POS_MAP, "POS customer ids mapped to registry customers by their linked visits.", [LINKS]),
            ], transaction_links),
        ],
        asset_checks=[
            dg.asset_check(asset=VISITS, partitions_def=shop_day, blocking=True,
                           description="Exit >= entry, sane durations, unique ids, no person with overlapping visits.")(
                visits_consistent),
            dg.asset_check(asset=REGISTRY, partitions_def=shop_day, blocking=True,
                           description="Every customer of the previous day's registry keeps its id and first-seen date.")(
                registry_ids_stable),
        ],
        jobs=[retention],
        schedules=[retention_schedule],
    )


def _jsonable(metadata: dict) -> dict:
    return {k: dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v for k, v in metadata.items()}

