"""The vision assets on real (synthetic) footage in both layouts, with bad files beside the good ones."""

from __future__ import annotations

import os
from datetime import date, datetime
from datetime import time as clock

import dagster as dg
import polars as pl
import pytest

from assets.jobs import VISION_JOB
from assets.partitions import camera_day_key, shop_day_key
from assets.vision import footage_changes
from watershop_dagster import catalog, lake
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.orchestration.instance import workspace_instance
from watershop_dagster.synthetic.footage import write_day
from watershop_dagster.vision.partition import camera_day_has_work

pytestmark = pytest.mark.slow

DAY = date(2025, 3, 1)
CONFIG = """\
partitions_start: "2025-01-01"
shops:
  - id: water
    timezone: Asia/Kolkata
    cameras: [counter]
  - id: market
    timezone: Europe/London
    cameras: [aisle]
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision_ws")
    (root / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(root / CONFIG_FILENAME)
    footage = config.footage_root
    truth_plain = write_day(footage, config.shop("water"), "counter", DAY, layout="plain", duration_s=150,
                            visits_per_hour=40, counter_s=(20, 30), size=(640, 360), seed=1)
    truth_frigate = write_day(footage, config.shop("market"), "aisle", DAY, layout="frigate", duration_s=90,
                              visits_per_hour=40, counter_s=(20, 30), size=(640, 360), segment_s=10, seed=2)
    day_dir = footage / "counter" / DAY.isoformat()
    good = sorted(day_dir.glob("*.mp4"))[0]
    (day_dir / "23-00-00.mp4").write_bytes(b"")  # zero-byte
    truncated = good.read_bytes()
    (day_dir / "22-00-00.mp4").write_bytes(truncated[: len(truncated) // 3])  # truncated
    (day_dir / "lunch-break.mp4").write_bytes(truncated[:1000])  # no time in the path
    return config, truth_plain, truth_frigate


def test_a_camera_day_needs_a_vision_run_only_with_footage_or_an_earlier_partition(workspace):
    """`watershop run` skips the rest, as the footage sensor does: such a run would write only empty partitions."""
    config, _, _ = workspace
    assert camera_day_has_work(config, "water", "counter", DAY)  # plain layout, bad files beside
    assert camera_day_has_work(config, "market", "aisle", DAY)  # Frigate layout
    later = date(2025, 3, 5)
    assert not camera_day_has_work(config, "water", "counter", later)
    lake.write_dataset(pl.DataFrame(schema=catalog.FOOTAGE_FILES.schema), config.lake_root, catalog.FOOTAGE_FILES,
                       shop_id="water", date=later, camera="counter")
    try:
        assert camera_day_has_work(config, "water", "counter", later)  # a re-run restates what an earlier run wrote
    finally:
        lake.delete_partition(config.lake_root, catalog.FOOTAGE_FILES.name, shop_id="water",
                              date=later.isoformat(), camera="counter")


def test_vision_partition_lands_faces_and_quarantines_bad_files(workspace):
    config, truth, _ = workspace
    defs = build_definitions(config.workspace_dir / CONFIG_FILENAME)
    instance = workspace_instance(config)
    result = defs.resolve_job_def(VISION_JOB).execute_in_process(
        instance=instance, partition_key=camera_day_key("water", "counter", DAY), raise_on_error=False)
    assert result.success
    keys = {"shop_id": "water", "date": DAY.isoformat(), "camera": "counter"}
    files = lake.read_partition(config.lake_root, "footage_files", **keys)
    assert files.filter(pl.col("status") == "processed").height == 1
    quarantine = lake.read_partition(config.lake_root, "footage_quarantine", **keys)
    reasons = dict(zip(quarantine["path"].to_list(), quarantine["reason"].to_list()))
    assert any("zero-byte" in r for p, r in reasons.items() if p.endswith("23-00-00.mp4"))
    assert any(p.endswith("22-00-00.mp4") for p in reasons)
    assert any(p.endswith("lunch-break.mp4") for p in reasons)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["footage_all_readable"] is False
    assert checks["embeddings_well_formed"] is True
    assert checks["tracks_consistent"] is True

    embeddings = lake.read_dataset(config.lake_root, "face_embeddings", shop_id="water", date=DAY)
    customers = truth.filter(pl.col("role") == "customer")
    assert embeddings.height >= customers.height
    # every true visit has an embedding inside its visible span
    for visit in customers.iter_rows(named=True):
        inside = embeddings.filter(pl.col("ts_utc").is_between(visit["entry_utc"], visit["counter_end_utc"]))
        assert inside.height >= 1, visit
    frames = lake.read_dataset(config.lake_root, "frames", shop_id="water", date=DAY)
    assert frames["searched"].sum() < frames.height  # idle frames are not searched

    # the shop-day is re-run once its last pending camera-day is done
    after_vision = defs.resolve_sensor_def("shop_day_after_vision")
    context = dg.build_run_status_sensor_context(sensor_name=after_vision.name, dagster_instance=instance,
                                                 dagster_run=result.dagster_run,
                                                 dagster_event=result.get_run_success_event())
    request = after_vision(context)
    assert isinstance(request, dg.RunRequest) and request.partition_key == shop_day_key("water", DAY)
    other = instance.create_run_for_job(defs.resolve_job_def(VISION_JOB), status=dg.DagsterRunStatus.NOT_STARTED,
                                        tags={"dagster/partition": str(camera_day_key("water", "counter", DAY)),
                                              "dagster/partition/date": DAY.isoformat()})
    try:
        assert isinstance(after_vision(context), dg.SkipReason)
    finally:
        instance.delete_run(other.run_id)


def test_rerun_is_idempotent_and_frigate_layout_works(workspace):
    config, _, truth = workspace
    job = build_definitions(config.workspace_dir / CONFIG_FILENAME).resolve_job_def(VISION_JOB)
    for _ in range(2):
        result = job.execute_in_process(instance=workspace_instance(config),
                                        partition_key=camera_day_key("market", "aisle", DAY))
        assert result.success
        path = lake.partition_file(config.lake_root, "face_embeddings", shop_id="market", date=DAY.isoformat(), camera="aisle")
        snapshot = pl.read_parquet(path)
        if _ == 0:
            first = snapshot
    assert snapshot.equals(first)
    assert snapshot.height >= truth.filter(pl.col("role") == "customer").height


def test_footage_sensor_waits_for_stable_files_and_maps_them_to_camera_days(workspace):
    config, _, _ = workspace
    import time

    current, requests = footage_changes(config, {}, time.time() + 3600)
    assert {(shop, camera, day) for shop, camera, day, _ in requests} == {("water", "counter", DAY),
                                                                          ("market", "aisle", DAY)}
    again, requests = footage_changes(config, current, time.time() + 3600)
    assert requests == set()
    _, requests = footage_changes(config, {}, 0)  # every file "just written": nothing yet
    assert requests == set()


def test_footage_sensor_waits_for_the_day_to_close(workspace, tmp_path):
    config, _, _ = workspace
    ist = config.shop("water").tz
    files = [p for p in config.footage_root.rglob("*.mp4")]
    stamps = {p: p.stat().st_mtime for p in files}
    written = datetime.combine(DAY, clock(9, 0), ist).timestamp()
    try:
        for p in files:
            os.utime(p, (written, written))
        noon = datetime.combine(DAY, clock(12, 0), ist).timestamp()
        current, requests = footage_changes(config, {}, noon)
        assert requests == set() and current == {}  # both shops still open: nothing taken yet
        closed = datetime.combine(DAY, clock(21, 5), ist).timestamp()  # water closed at 21:00 IST, London open
        _, requests = footage_changes(config, current, closed)
        assert {(shop, camera) for shop, camera, _, _ in requests} == {("water", "counter")}
    finally:
        for p, stamp in stamps.items():
            os.utime(p, (stamp, stamp))
