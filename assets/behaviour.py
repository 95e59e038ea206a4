"""Behaviour: people tracked in each camera-day's footage, zone visits, loitering, footfall, occupancy,
transitions and heatmap cells, with checks. The body is `behaviour`; `build_behaviour_definitions`
only decorates it and the checks with the workspace's camera-day partitions.

It runs after the shop-day's identity (faces seen on a person track name it), in its own job
(assets.jobs: the behaviour job, its sensors and `watershop run` order it after identity). Only
cameras that track people (zones, or `people: true`) do any work; other camera-days land empty."""

import dagster as dg
import polars as pl

from assets.identity import IDENTITIES
from assets.jobs import BEHAVIOUR_GROUP
from assets.partitions import CAMERA_DIM, DATE_DIM, SHOP_DIM, WorkspacePartitions, camera_stream, parse_camera_day
from assets.vision import DETECTIONS
from resources import WatershopResource
from watershop_dagster import catalog, lake
from watershop_dagster.behaviour.partition import process_behaviour_day
from watershop_dagster.zones import checks

PERSON_TRACKS = dg.AssetKey(catalog.PERSON_TRACKS.asset_key)
ZONE_VISITS = dg.AssetKey(catalog.ZONE_VISITS.asset_key)
LOITERING_EVENTS = dg.AssetKey(catalog.LOITERING_EVENTS.asset_key)
FOOTFALL = dg.AssetKey(catalog.FOOTFALL.asset_key)
QUARANTINE = dg.AssetKey(catalog.PERSON_OBSERVATIONS_QUARANTINE.asset_key)
SAMPLE_ROWS = 20  # offending rows shown in a failed check's metadata


def behaviour(context: dg.AssetExecutionContext, watershop: WatershopResource):
    """Track people in the camera-day's footage, name tracks by the faces seen on them, and derive the
    zone datasets; every dataset is rewritten whole (a re-run replaces it)."""
    shop_id, camera, day = parse_camera_day(context.partition_key)
    result = process_behaviour_day(watershop.config, shop_id, camera, day)
    if result.skipped:
        context.log.info(f"{shop_id}.{camera} {day}: {result.skipped}")
    quarantine = result.quarantined
    for dataset in catalog.BEHAVIOUR_OUTPUTS:
        metadata = {"rows": result.count(dataset)}
        if dataset is catalog.PERSON_TRACKS:
            metadata.update({
                "files": result.files,
                "footage_seconds": round(result.footage_seconds, 1),
                "realtime_factor": round(result.realtime_factor, 1),
                "identified_tracks": result.identified_tracks,
                "quarantined": quarantine.height,
                "skipped": result.skipped or "",
            })
            if result.heatmap_png:
                metadata["heatmap"] = dg.MetadataValue.path(str(result.heatmap_png))
        if dataset is catalog.PERSON_OBSERVATIONS_QUARANTINE:
            metadata["reasons"] = dg.MetadataValue.json(
                quarantine.group_by("reason").len().sort("reason").head(50).to_dicts())
        yield dg.MaterializeResult(asset_key=dg.AssetKey(dataset.asset_key), metadata=metadata)


def _read(context, watershop: WatershopResource, dataset: catalog.Dataset) -> pl.DataFrame:
    shop_id, camera, day = parse_camera_day(context.partition_key)
    return lake.read_dataset(watershop.config.lake_root, dataset, shop_id=shop_id, date=day, camera=camera)


def _result(bad: pl.DataFrame, checked: int, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bad.is_empty(), severity=severity, metadata={
        "checked": checked, "failing": bad.height,
        "sample": dg.MetadataValue.json(bad.head(SAMPLE_ROWS).with_columns(
            pl.col(pl.Datetime).dt.to_string()).to_dicts())})


def zone_visits_consistent(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    visits = _read(context, watershop, catalog.ZONE_VISITS)
    tracks = _read(context, watershop, catalog.PERSON_TRACKS)
    bad = pl.concat([
        checks.visits_outside_track_life(visits, tracks).select(
            "zone", "track_id", "enter_ts", "exit_ts", problem=pl.lit("outside its track's life")),
        checks.visits_exit_before_entry(visits).select(
            "zone", "track_id", "enter_ts", "exit_ts", problem=pl.lit("exit before entry")),
        checks.overlapping_visits(visits).select(
            "zone", "track_id", "enter_ts", "exit_ts", problem=pl.lit("overlaps the track's previous visit")),
    ])
    return _result(bad, visits.height)


def loitering_consistent(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    loitering = _read(context, watershop, catalog.LOITERING_EVENTS)
    bad = checks.loitering_without_visit(loitering, _read(context, watershop, catalog.ZONE_VISITS))
    return _result(bad.select("zone", "track_id", "start_ts", "alert_ts"), loitering.height)


def footfall_covers_identified(context: dg.AssetCheckExecutionContext, watershop: WatershopResource):
    footfall = _read(context, watershop, catalog.FOOTFALL)
    bad = checks.footfall_below_identified_entrants(footfall, _read(context, watershop, catalog.ZONE_VISITS))
    return _result(bad, footfall.height, dg.AssetCheckSeverity.WARN)


def _spec(key: dg.AssetKey, description: str, deps=()) -> dg.AssetSpec:
    return dg.AssetSpec(key, description=description, group_name=BEHAVIOUR_GROUP, kinds={"parquet"}, deps=deps)


def shop_to_camera(partitions: WorkspacePartitions) -> dg.MultiPartitionMapping:
    """A camera-day depends on the same day of its shop (its identities)."""
    streams = {shop.id: [camera_stream(shop.id, camera) for camera in shop.cameras] for shop in partitions.shops}
    return dg.MultiPartitionMapping({
        DATE_DIM: dg.DimensionPartitionMapping(DATE_DIM, dg.IdentityPartitionMapping()),
        SHOP_DIM: dg.DimensionPartitionMapping(CAMERA_DIM, dg.StaticPartitionMapping(
            {shop: camera_streams for shop, camera_streams in streams.items() if camera_streams})),
    })


def behaviour_specs(partitions: WorkspacePartitions) -> list[dg.AssetSpec]:
    tracks = [PERSON_TRACKS]
    return [
        _spec(PERSON_TRACKS, "People tracked in the footage: life span, box sizes, path sampled on movement, "
                             "identity from faces seen on the track.",
              [DETECTIONS, dg.AssetDep(IDENTITIES, partition_mapping=shop_to_camera(partitions))]),
        _spec(ZONE_VISITS, "One row per continuous presence of one track in one zone: entry, exit, dwell.", tracks),
        _spec(LOITERING_EVENTS, "Zone visits that reached the zone's loitering_time.", [ZONE_VISITS]),
        _spec(FOOTFALL, "Entrance crossings in and out.", [ZONE_VISITS]),
        _spec(dg.AssetKey(catalog.ZONE_OCCUPANCY.asset_key), "People per zone per minute.", [ZONE_VISITS]),
        _spec(dg.AssetKey(catalog.ZONE_TRANSITIONS.asset_key), "Zone A -> zone B counts.", [ZONE_VISITS]),
        _spec(dg.AssetKey(catalog.HEATMAP_CELLS.asset_key), "Where people stood: bottom-centre density per cell.",
              tracks),
        _spec(QUARANTINE, "Observations and footage files the behaviour analytics could not use, with the reason.",
              tracks),
    ]


def build_behaviour_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """Camera-day partitions, as vision; empty for a workspace without cameras."""
    camera_day = partitions.camera_day
    if camera_day is None:
        return dg.Definitions()

    def check(asset: dg.AssetKey, description: str, body, blocking: bool = False) -> dg.AssetChecksDefinition:
        return dg.asset_check(asset=asset, partitions_def=camera_day, description=description,
                              blocking=blocking)(body)

    return dg.Definitions(
        assets=[dg.multi_asset(specs=behaviour_specs(partitions), partitions_def=camera_day,
                               op_tags={"dagster/concurrency_key": "vision"})(behaviour)],
        asset_checks=[
            check(ZONE_VISITS, "Every zone visit lies inside its track's life, exits at or after its entry and "
                               "does not overlap the track's previous visit of the zone.", zone_visits_consistent,
                  blocking=True),
            check(LOITERING_EVENTS, "Every loitering event starts with a zone visit and alerts before it ends.",
                  loitering_consistent),
            check(FOOTFALL, "Entries counted at the entrance are at least the identified people who passed it.",
                  footfall_covers_identified),
        ],
    )
