"""The Frigate camera-day asset through real Dagster: landed messages -> lake datasets with
source=frigate, quarantine visible in metadata and the lake; the sensor requests closed camera-days."""

from __future__ import annotations

import json
import os
from datetime import date

import dagster as dg
import polars as pl
import pytest

from assets.frigate import frigate_changes
from assets.jobs import FRIGATE_JOB
from assets.partitions import camera_day_key
from tests.frigate_helpers import CAMERAS, frigate_workspace
from watershop_dagster import catalog, lake
from watershop_dagster.config import load_config
from watershop_dagster.frigate.landing import LandingWriter
from watershop_dagster.frigate.simulate import supermarket_replay
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.orchestration.runner import run_range

START = 1_717_236_000.0  # 2024-06-01 10:00 UTC
DAY = date(2024, 6, 1)


def test_a_landed_camera_day_lands_in_the_lake_and_the_sensor_requests_it(tmp_path):
    config_path, prefix = frigate_workspace(tmp_path)
    config = load_config(config_path)
    replay = supermarket_replay(CAMERAS, START, people=30, seed=11, known={"alice": 0.2})
    (config.known_people_dir / "vip" / "alice").mkdir(parents=True)
    writer = LandingWriter(config.frigate_landing, "s1", set(CAMERAS), config.shops[0].tz)
    for n, payload in enumerate(replay.messages + ["{broken", json.dumps({"type": "new", "after": {"camera": "x"}})]):
        writer.append(f"{prefix}/events", payload, START + n * 0.01)
    writer.close()
    for landing in config.frigate_landing.glob("s1/*/*.ndjson"):
        os.utime(landing, (START + 7200, START + 7200))  # last written at noon

    current, requests = frigate_changes(config, {}, START + 24 * 3600)
    assert {(camera, day) for _, camera, day, _ in requests} == {("door", DAY), ("aisle", DAY)}  # not _unrouted
    assert frigate_changes(config, current, START + 24 * 3600)[1] == []  # seen: not requested again
    assert frigate_changes(config, {}, START + 3600)[1] == []  # the day has not closed yet

    defs = build_definitions(config_path)
    job = defs.resolve_job_def(FRIGATE_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, partition_key=camera_day_key("s1", "door", DAY))
        assert result.success
        meta = result.asset_materializations_for_node("frigate_events")[-1].metadata
    assert meta["unrouted_quarantined"].value == 2
    visits = lake.read_dataset(config.lake_root, catalog.ZONE_VISITS, shop_id="s1", date=DAY, camera="door")
    truth = [v for v in replay.visits if v.camera == "door"]
    assert visits.height == len(truth) and set(visits["source"]) == {"frigate"}
    assert visits.filter(pl.col("identity") == "vip/alice").height > 0
    tracks = lake.read_dataset(config.lake_root, catalog.PERSON_TRACKS, shop_id="s1", date=DAY, camera="door")
    assert tracks.height == len({json.loads(m)["after"]["id"] for m in replay.messages
                                 if json.loads(m)["after"]["camera"] == "door"})
    bad = lake.read_dataset(config.lake_root, catalog.FRIGATE_MESSAGES_QUARANTINE, shop_id="s1", date=DAY)
    assert sorted(bad["reason"]) == ["invalid JSON", "unknown camera 'x'"]


@pytest.mark.slow
def test_watershop_run_materializes_the_landed_frigate_camera_days(tmp_path):
    config_path, prefix = frigate_workspace(tmp_path)
    config = load_config(config_path)
    replay = supermarket_replay(CAMERAS, START, people=10, seed=12)
    writer = LandingWriter(config.frigate_landing, "s1", {"door"}, config.shops[0].tz)
    for payload in replay.messages:
        writer.append(f"{prefix}/events", payload, START)
    writer.close()
    runs = run_range(DAY, DAY, config_path)
    assert all(run.success for run in runs)
    visits = lake.read_dataset(config.lake_root, catalog.ZONE_VISITS, shop_id="s1", date=DAY)
    assert visits.height == len([v for v in replay.visits if v.camera == "door"])
    assert set(visits["camera"]) == {"door"} and set(visits["source"]) == {"frigate"}
