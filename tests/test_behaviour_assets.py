"""The behaviour assets materialised by Dagster on a short synthetic supermarket clip: rows land, checks
pass, a re-run is idempotent, bad files are quarantined, faces name tracks and erasure nulls them."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.behaviour import shop_to_camera
from assets.jobs import BEHAVIOUR_JOB, TRIGGER_AFTER_BEHAVIOUR, TRIGGER_CLI, TRIGGER_TAG, VISION_JOB, behaviour_requests
from assets.partitions import WorkspacePartitions, camera_day_key, shop_day_key
from watershop_dagster import catalog, lake
from watershop_dagster.behaviour.partition import SKIP_NO_PEOPLE, process_behaviour_day
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.identity.erasure import forget_customer
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.orchestration.instance import workspace_instance
from watershop_dagster.orchestration.runner import run_range
from watershop_dagster.synthetic.footage import plain_path
from watershop_dagster.synthetic.supermarket import (
    SupermarketScene,
    camera_view,
    plan_lighting,
    plan_shoppers,
    render_scene,
    scene_truth,
)

pytestmark = pytest.mark.slow

DAY = date(2025, 3, 1)
START = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
CLIP_S = 25.0  # one shopper walks in, stops at a shelf and walks out (seed 3)
SIZE = (640, 360)
SEED = 3


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Shop `market`: `aisle` with zones, `backroom` (the same clip) with `people: true` and no zones, `till`
    with neither; a zero-byte and a truncated file beside the aisle's good one."""
    root = tmp_path_factory.mktemp("behaviour_ws")
    footage = root / "landing" / "footage"
    view = camera_view("aisle", 0, SEED)
    shoppers = plan_shoppers(view, CLIP_S, SEED, shoppers_per_minute=15, still_shoppers=0, pause_s=(3, 8))
    scene = SupermarketScene(view, shoppers, START, 15, SIZE, lighting=plan_lighting(CLIP_S, SEED, "aisle"))
    good = render_scene(scene, plain_path(footage, "aisle", START), CLIP_S)
    truth = scene_truth(scene, CLIP_S)
    backroom = plain_path(footage, "backroom", START)
    backroom.parent.mkdir(parents=True)
    shutil.copy(good, backroom)
    (good.parent / "11-00-00.mp4").write_bytes(b"")
    data = good.read_bytes()
    (good.parent / "12-00-00.mp4").write_bytes(data[: len(data) // 3])
    cameras = {**truth.zone_config["cameras"], "backroom": {"people": True}, "till": {}}
    (root / CONFIG_FILENAME).write_text(yaml.safe_dump({
        "partitions_start": "2025-01-01", "shops": [{"id": "market", "timezone": "UTC", "cameras": cameras}]}))
    config = load_config(root / CONFIG_FILENAME)
    return config, build_definitions(root / CONFIG_FILENAME), truth


def _materialise(workspace, camera: str) -> dg.ExecuteInProcessResult:
    config, defs, _ = workspace
    return defs.resolve_job_def(BEHAVIOUR_JOB).execute_in_process(
        instance=workspace_instance(config), partition_key=camera_day_key("market", camera, DAY), raise_on_error=False)


def _read(config, dataset: catalog.Dataset, camera: str) -> pl.DataFrame:
    return lake.read_dataset(config.lake_root, dataset, shop_id="market", date=DAY, camera=camera)


def _metadata(result: dg.ExecuteInProcessResult, dataset: catalog.Dataset) -> dict:
    event = next(m for m in result.get_asset_materialization_events()
                 if m.asset_key == dg.AssetKey(dataset.asset_key))
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_a_camera_day_lands_every_dataset_checks_pass_and_bad_files_are_quarantined(workspace):
    config, _, truth = workspace
    result = _materialise(workspace, "aisle")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 3 and all(check.passed for check in checks), [(c.check_name, c.metadata) for c in checks]

    tracks = _read(config, catalog.PERSON_TRACKS, "aisle")
    visits = _read(config, catalog.ZONE_VISITS, "aisle")
    assert tracks.height >= 1 and tracks["path"].list.len().min() >= 2
    assert set(visits["zone"]) == set(truth.zone_visits["zone"])
    assert _read(config, catalog.FOOTFALL, "aisle")["direction"].sort().to_list() == ["in", "out"]
    assert _read(config, catalog.HEATMAP_CELLS, "aisle").height > 0
    for dataset in catalog.BEHAVIOUR_OUTPUTS:
        frame = _read(config, dataset, "aisle")
        assert set(frame["source"]) <= {catalog.SOURCE_WATERSHOP}, dataset.name

    reasons = _read(config, catalog.PERSON_OBSERVATIONS_QUARANTINE, "aisle")["reason"].to_list()
    assert len(reasons) == 2
    assert any("11-00-00.mp4" in r and "zero-byte" in r for r in reasons)
    assert any("12-00-00.mp4" in r and "truncated" in r for r in reasons)

    meta = _metadata(result, catalog.PERSON_TRACKS)
    assert meta["files"] == 1 and meta["quarantined"] == 2 and meta["realtime_factor"] > 0
    assert meta["footage_seconds"] == pytest.approx(CLIP_S, abs=0.2)
    assert (config.workspace_dir / "reports" / "market" / DAY.isoformat() / "heatmap_aisle.png").stat().st_size > 0


def test_a_rerun_replaces_the_camera_day_with_the_same_rows(workspace):
    config, _, _ = workspace
    assert _materialise(workspace, "aisle").success
    before = {d.name: _read(config, d, "aisle") for d in catalog.BEHAVIOUR_OUTPUTS}
    assert _materialise(workspace, "aisle").success
    for dataset in catalog.BEHAVIOUR_OUTPUTS:
        assert _read(config, dataset, "aisle").equals(before[dataset.name]), dataset.name


def test_cameras_without_zones_track_people_only_when_asked(workspace):
    config, _, _ = workspace
    assert _materialise(workspace, "backroom").success
    assert _read(config, catalog.PERSON_TRACKS, "backroom").height >= 1
    assert _read(config, catalog.HEATMAP_CELLS, "backroom").height > 0
    assert _read(config, catalog.ZONE_VISITS, "backroom").is_empty()

    result = _materialise(workspace, "till")
    assert result.success
    assert _metadata(result, catalog.PERSON_TRACKS)["skipped"] == SKIP_NO_PEOPLE
    assert all(_read(config, d, "till").is_empty() for d in catalog.BEHAVIOUR_OUTPUTS)


def test_an_unknown_camera_is_quarantined_with_a_reason_not_a_crash(workspace):
    config, _, _ = workspace
    result = process_behaviour_day(config, "market", "ghost", DAY)
    assert "not a camera of shop 'market'" in result.skipped
    (reason,) = _read(config, catalog.PERSON_OBSERVATIONS_QUARANTINE, "ghost")["reason"].to_list()
    assert "ghost" in reason
    assert all(_read(config, d, "ghost").is_empty() for d in catalog.BEHAVIOUR_OUTPUTS
               if d is not catalog.PERSON_OBSERVATIONS_QUARANTINE)


def _faces_on(track: dict) -> pl.DataFrame:
    """FACE_DETECTIONS of one face track: a face in the head of the person's median box at every point
    of its path (where the box that frame is much smaller, e.g. occluded, the face does not match)."""
    height, width = track["median_box_height"], track["median_box_width"]
    half = max(3, round(width * 0.15))
    rows = []
    for i, point in enumerate(track["path"]):
        cx, top = round(point["x"] * SIZE[0]), round(point["y"] * SIZE[1] - 0.85 * height)
        rows.append({"detection_id": f"d{i}", "camera": "aisle", "ts_utc": point["ts"], "track_id": "face-1",
                     "left": cx - half, "top": top, "right": cx + half, "bottom": top + 2 * half})
    return pl.DataFrame(rows)


def test_a_face_names_the_track_and_erasure_nulls_it_but_keeps_the_rows(workspace):
    config, _, _ = workspace
    assert _materialise(workspace, "aisle").success
    track = _read(config, catalog.PERSON_TRACKS, "aisle").sort("duration_s", descending=True).row(0, named=True)
    keys = {"shop_id": "market", "date": DAY}
    lake.write_dataset(_faces_on(track), config.lake_root, catalog.FACE_DETECTIONS, **keys, camera="aisle")
    lake.write_dataset(pl.DataFrame({"track_id": ["face-1"], "camera": ["aisle"], "customer_id": ["C-0001"],
                                     "role": ["customer"]}), config.lake_root, catalog.FACE_IDENTITIES, **keys)

    assert _materialise(workspace, "aisle").success
    named = _read(config, catalog.ZONE_VISITS, "aisle").filter(pl.col("track_id") == track["track_id"])
    assert named.height >= 1 and set(named["identity"]) == {"C-0001"}
    tracks = _read(config, catalog.PERSON_TRACKS, "aisle")
    assert tracks.filter(pl.col("track_id") == track["track_id"])["identity"].to_list() == ["C-0001"]

    rows = _read(config, catalog.ZONE_VISITS, "aisle").height
    forget_customer(config, "market", "C-0001")
    after = _read(config, catalog.ZONE_VISITS, "aisle")
    assert after.height == rows
    kept = after.filter(pl.col("track_id") == track["track_id"])
    assert kept.height == named.height and kept["identity"].null_count() == kept.height
    assert _read(config, catalog.PERSON_TRACKS, "aisle")["identity"].null_count() == tracks.height


def test_a_daily_run_that_built_identities_asks_for_the_people_cameras(workspace):
    config, _, _ = workspace
    shops = tuple(config.shops)
    partition = str(shop_day_key("market", DAY))

    def run(tags: dict, selection=None) -> dg.DagsterRun:
        return dg.DagsterRun(job_name="watershop_daily", run_id="r1", tags={"dagster/partition": partition, **tags},
                             asset_selection=selection)

    requested = behaviour_requests(run({}), shops)
    assert sorted(r.partition_key for r in requested) == sorted(
        str(camera_day_key("market", camera, DAY)) for camera in ("aisle", "backroom"))
    assert behaviour_requests(run({TRIGGER_TAG: TRIGGER_CLI}), shops) == []
    assert behaviour_requests(run({TRIGGER_TAG: TRIGGER_AFTER_BEHAVIOUR}), shops) == []
    assert behaviour_requests(run({}, frozenset({dg.AssetKey(["marts", "daily_revenue"])})), shops) == []


def test_watershop_run_orders_vision_identity_behaviour_then_marts(workspace):
    """Last in the module: vision and identity rewrite the face data the test above planted."""
    config, _, _ = workspace
    (run,) = run_range(DAY, DAY, config.workspace_dir / CONFIG_FILENAME)
    assert run.success, run.failed_steps
    # vision of the cameras with footage (till has none: no run), behaviour of aisle and backroom
    assert len(run.vision_run_ids) == 2 + 2
    instance = workspace_instance(config)
    jobs = [instance.get_run_by_id(run_id).job_name for run_id in run.vision_run_ids]
    assert jobs == [VISION_JOB] * 2 + [BEHAVIOUR_JOB] * 2
    assert [instance.get_run_by_id(run_id).tags["dagster/partition"] for run_id in run.vision_run_ids[:2]] == [
        str(camera_day_key("market", camera, DAY)) for camera in ("aisle", "backroom")]
    behaviour_started = min(instance.get_run_stats(run_id).start_time for run_id in run.vision_run_ids[2:])
    assert instance.get_run_stats(run.run_id).end_time <= behaviour_started  # identity first
    assert instance.get_run_stats(run.marts_run_id).start_time >= behaviour_started
    assert _read(config, catalog.ZONE_VISITS, "aisle").height > 0


def test_a_camera_day_depends_on_its_shop_day_identities(workspace):
    """What a UI backfill of camera-days with identity selected waits for."""
    config, _, _ = workspace
    partitions = WorkspacePartitions.from_config(config)
    mapping = shop_to_camera(partitions)
    camera_day = partitions.camera_day.empty_subset().with_partition_keys([str(camera_day_key("market", "aisle", DAY))])
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        camera_day, partitions.camera_day, partitions.shop_day).partitions_subset
    assert list(upstream.get_partition_keys()) == [str(shop_day_key("market", DAY))]
