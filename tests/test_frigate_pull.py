"""`watershop frigate pull` against a real local HTTP server shaped like Frigate's /api/events:
paging until done, idempotent re-pull, and how close the API's estimated visits come to the truth
and to `listen`'s."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from tests.frigate_helpers import CAMERAS, FrigateApi, frigate_workspace, zone_points
from tests.test_frigate_events import START, landed, match_visits, zones_of
from watershop_dagster.cli import main
from watershop_dagster.config import load_config
from watershop_dagster.frigate.events import EXIT_API_ESTIMATE, build_camera_day, build_landed_camera_day
from watershop_dagster.frigate.landing import LandingWriter
from watershop_dagster.frigate.pull import pull_events
from watershop_dagster.frigate.simulate import api_event, supermarket_replay

DAY = date(2024, 6, 1)


@pytest.fixture
def api_day():
    replay = supermarket_replay(CAMERAS, START, people=50, seed=404)
    points = {**zone_points(zones_of("door")), **zone_points(zones_of("aisle"))}
    events = [api_event(person, points) for person in replay.persons]
    running = dict(events[0], id="still-running", end_time=None)
    api = FrigateApi(events + [running])
    yield replay, events, api
    api.close()


def test_pull_pages_until_done_and_a_re_pull_writes_nothing(tmp_path, api_day):
    replay, events, api = api_day
    config_path, _ = frigate_workspace(tmp_path)
    config = load_config(config_path)
    writer = LandingWriter(config.frigate_landing, "s1", set(CAMERAS), config.shops[0].tz)
    report = pull_events(api.url, writer, DAY, DAY, limit=7)
    assert report.landed == len(events) and report.in_progress == 1 and report.pages >= len(events) // 7
    result = CliRunner().invoke(main, ["frigate", "pull", "--config", str(config_path), "--url", api.url,
                                       "--from", "2024-06-01", "--to", "2024-06-01"])
    assert result.exit_code == 0, result.output
    assert f"0 landed, {len(events)} already landed, 1 still in progress" in result.output
    door = config.frigate_landing / "s1" / "door" / "2024-06-01.ndjson"
    lines = [json.loads(line) for line in door.read_text().splitlines()]
    assert sorted(json.loads(line["payload"])["id"] for line in lines) == sorted(
        e["id"] for e in events if e["camera"] == "door")


def test_pulled_visits_are_estimates_close_to_listen(tmp_path, api_day):
    replay, events, api = api_day
    config_path, _ = frigate_workspace(tmp_path)
    config = load_config(config_path)
    pull_events(api.url, LandingWriter(config.frigate_landing, "s1", set(CAMERAS), config.shops[0].tz), DAY, DAY)
    for camera in CAMERAS:
        pulled = build_landed_camera_day(config.frigate_landing / "s1" / camera / "2024-06-01.ndjson",
                                         config.frigate_landing, camera, zones_of(camera), {}, (1280, 720))
        assert set(pulled.zone_visits["exit_reason"]) == {EXIT_API_ESTIMATE}
        truth = [v for v in replay.visits if v.camera == camera]
        recall, precision, _ = match_visits(truth, pulled.zone_visits)
        assert recall >= 0.8 and precision >= 0.8, (camera, recall, precision)
        listened = build_camera_day(landed([m for m in replay.messages if json.loads(m)["after"]["camera"] == camera]),
                                    camera, zones_of(camera), {}, "x", (1280, 720))
        both = build_camera_day(
            landed([m for m in replay.messages if json.loads(m)["after"]["camera"] == camera])
            + landed([json.dumps(e, sort_keys=True) for e in events if e["camera"] == camera], topic="api/events"),
            camera, zones_of(camera), {}, "x", (1280, 720))
        assert both.zone_visits.equals(listened.zone_visits)  # MQTT's exact times win over the API's estimates
