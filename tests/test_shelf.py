"""Falling items in shelf zones: the detector on rendered shelf scenes and on hand-made frames, the
alert cooldown, and the near-live path end to end: Frigate segments in a temp layout -> sensor ->
segment job (alerts to a real HTTP server) -> camera-day asset reusing the segments' results."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import cv2
import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml

from assets.partitions import WorkspacePartitions, camera_day_key
from assets.shelf import SEGMENT_JOB, build_shelf_definitions, new_segments, shelf_segment_job
from resources import WatershopResource
from watershop_dagster import catalog, lake
from watershop_dagster.alerts.channels import LOG
from watershop_dagster.alerts.delivery import deliver
from watershop_dagster.alerts.log import read_log
from watershop_dagster.alerts.model import SOURCE_SHELF
from watershop_dagster.alerts.rules import falling_object_alerts
from watershop_dagster.config import load_config
from watershop_dagster.shelf.detector import ShelfFallDetector, ShelfRegion, YuvPlanes
from watershop_dagster.shelf.pipeline import PROCESSED, QUARANTINED, REUSED, process_shelf_camera_day
from watershop_dagster.shelf.scan import detect_falls_in_file, regions_for, yuv_planes
from watershop_dagster.shelf.settings import FallTuning, ShelfConfig
from watershop_dagster.synthetic import shelf as synthetic
from watershop_dagster.vision.decode import iter_frames
from watershop_dagster.zones.config import CameraSettings, resolve_zones

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CAMERA = "aisle"


def planes(rgb: np.ndarray) -> YuvPlanes:
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    return YuvPlanes(i420[:h], i420[h:h + h // 4].reshape(h // 2, w // 2), i420[h + h // 4:].reshape(h // 2, w // 2))


def run_scene(plan: synthetic.ShelfPlan, seconds: float, seed: int = 7) -> list:
    """Render the scene frame by frame (no encoding) through the shelf zone's detector."""
    scene = synthetic.ShelfScene(CAMERA, plan, START, seed)
    zones = resolve_zones(CAMERA, CameraSettings.model_validate(synthetic.camera_config([CAMERA])[CAMERA]))
    detector = ShelfFallDetector(regions_for(zones, synthetic.SIZE, ShelfConfig(), FallTuning())[0])
    events = []
    for index in range(round(seconds * scene.fps)):
        events += detector.update(index / scene.fps, planes(scene.render(index)))
    return [event for event in events if event.confidence >= ShelfConfig().min_confidence]


def test_drops_are_found_with_their_release_time_and_height():
    plan = synthetic.plan_shelf(36, 7, CAMERA, drops=3, reaches=1, walkers=1, carts=0, light_steps=0, flicker_bursts=0)
    events = run_scene(plan, 36)
    assert len(events) == 3
    for drop, event in zip(sorted(plan.drops, key=lambda d: d.t_release), sorted(events, key=lambda e: e.release_s)):
        assert abs(event.release_s - drop.t_release) < 0.3
        assert abs(event.landing_s - drop.t_land) < 0.3
        assert event.drop_height_px == pytest.approx(drop.y_floor - drop.y_bottom, rel=0.3)
        assert event.zone == synthetic.zone_name(CAMERA)


def test_arms_people_carts_the_sign_and_light_changes_are_no_falls():
    plan = synthetic.plan_shelf(40, 8, CAMERA, drops=0, reaches=3, walkers=2, carts=1, light_steps=2, flicker_bursts=1)
    assert run_scene(plan, 40) == []


def _encoded_scene(path: Path, plan: synthetic.ShelfPlan, seconds: float, seed: int) -> tuple[list, Counter]:
    """Write the scene as H.264 (the sign's cord flickers only once compressed) and decode it through the
    zone's detector: its confident events and its rejections by reason."""
    synthetic.write_shelf_footage(path, CAMERA, START, seconds, seed, plan=plan)
    zones = resolve_zones(CAMERA, CameraSettings.model_validate(synthetic.camera_config([CAMERA])[CAMERA]))
    detector = ShelfFallDetector(regions_for(zones, synthetic.SIZE, ShelfConfig(), FallTuning())[0])
    events = []
    for decoded in iter_frames(path, threads=1):
        events += detector.update(decoded.pts_s, yuv_planes(decoded.frame))
    return [event for event in events if event.confidence >= ShelfConfig().min_confidence], detector.rejected


def _sign_only(amplitude_deg: float, period_s: float, drops=()) -> synthetic.ShelfPlan:
    return synthetic.ShelfPlan(tuple(drops), (), (), (), (), amplitude_deg, period_s)


def test_a_swinging_sign_alone_gives_no_fall(tmp_path):
    # this sign's cord, read from its pivot down into the sign, once passed as a free fall
    events, rejected = _encoded_scene(tmp_path / "sign.mp4", _sign_only(11.6, 1.78), 30, seed=27)
    assert events == []
    assert rejected["swinging"] >= 1  # vetoed by the swing map, not by luck


def test_a_drop_next_to_a_swinging_sign_is_still_found(tmp_path):
    g = synthetic.GRAVITY_M_S2 * synthetic.px_per_m()
    drops = [synthetic.Drop(t, x, board, 300.0, 12.0, 16.0, (40, 60, 200), False, 0.0, 0.0, g)
             for t, x, board in ((5.0, 470.0, 78.0), (11.0, 455.0, 138.0), (17.0, 440.0, 78.0))]  # beside the sign (x 487-573)
    events, rejected = _encoded_scene(tmp_path / "near.mp4", _sign_only(13.6, 1.65, drops), 22, seed=10)
    assert sorted(round(event.release_s) for event in events) == [5, 11, 17]
    assert all(abs(event.release_s - drop.t_release) < 0.3 for event, drop in zip(sorted(events, key=lambda e: e.release_s), drops))
    assert rejected["swinging"] >= 1  # the sign's own candidate fall was there, and vetoed


def test_a_fall_across_a_segment_boundary_is_told_once(tmp_path):
    # 6 s segments: one fall lands just before the boundary at 6 s (the next segment's pre-roll sees it
    # too), one is released 0.1 s before the boundary at 12 s and lands in the next segment
    g = synthetic.GRAVITY_M_S2 * synthetic.px_per_m()
    drops = [synthetic.Drop(t, x, 78.0, 300.0, 12.0, 16.0, (40, 60, 200), False, 0.0, 0.0, g)
             for t, x in ((5.3, 200.0), (11.9, 320.0))]
    plan = synthetic.ShelfPlan(tuple(drops), (), (), (), (), 8.0, 2.0)
    paths, _ = synthetic.write_shelf_segments(tmp_path, CAMERA, START, 18, 11, segment_s=6, plan=plan)
    zones = resolve_zones(CAMERA, CameraSettings.model_validate(synthetic.camera_config([CAMERA])[CAMERA]))
    releases = []
    for k, path in enumerate(paths):
        found = detect_falls_in_file(path, zones, ShelfConfig(), previous=paths[k - 1] if k else None)
        releases += [6 * k + event.release_s for event in found.events]
    assert len(releases) == 2
    assert all(abs(found - drop.t_release) < 0.3 for found, drop in zip(sorted(releases), drops))


def test_a_fall_across_midnight_is_told_once_by_the_camera_day_runs(tmp_path):
    # a fall released 0.1 s before midnight (UTC shop) lands in the first segment of the next day: that
    # day's run must warm up on the last segment of the day before, as the near-live path does
    cfg = load_config(_workspace(tmp_path, "http://127.0.0.1:9/unused"))
    g = synthetic.GRAVITY_M_S2 * synthetic.px_per_m()
    start = datetime(2026, 3, 2, 23, 59, 48, tzinfo=UTC)
    drop = synthetic.Drop(11.9, 260.0, 78.0, 300.0, 12.0, 16.0, (40, 60, 200), False, 0.0, 0.0, g)
    plan = synthetic.ShelfPlan((drop,), (), (), (), (), 8.0, 2.0)
    synthetic.write_shelf_segments(cfg.footage_root, CAMERA, start, 18, 11, segment_s=6, plan=plan)
    before = process_shelf_camera_day(cfg, "s1", CAMERA, start.date())
    after = process_shelf_camera_day(cfg, "s1", CAMERA, start.date() + timedelta(days=1))
    assert before.events.height == 0
    assert after.events.height == 1
    assert abs((after.events["release_utc"][0] - start).total_seconds() - drop.t_release) < 0.3


def _region(size=(200, 200)) -> ShelfRegion:
    polygon = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    return ShelfRegion.from_polygon("c", "z", polygon, size, gravity_px_s2=9.81 * 200 / 2.0, work_width=100)


def _square_frames(ys: list[float], size=(200, 200)):
    """Gray frames with a dark 8x8 square whose bottom is at each y."""
    for y in ys:
        rgb = np.full((size[1], size[0], 3), 160, np.uint8)
        cv2.rectangle(rgb, (96, round(y) - 8), (104, round(y) - 1), (20, 20, 20), -1)
        yield planes(rgb)


def _feed(detector: ShelfFallDetector, ys: list[float], fps: float = 25.0, people=()) -> list:
    events = []
    for index, frame in enumerate(_square_frames(ys)):
        events += detector.update(index / fps, frame, people)
    return events


def test_free_fall_is_required_and_people_boxes_veto():
    g = 9.81 * 200 / 2.0  # px/s² of this 200 px zone, 2 m high
    rest = [30.0] * 75  # warm-up, then a fall from rest at 3 s
    fall = [30.0 + 0.5 * g * (k / 25) ** 2 for k in range(1, 16)]
    falling = rest + [y for y in fall if y < 190] + [190.0] * 10
    assert len(_feed(ShelfFallDetector(_region()), falling)) == 1
    steady = rest + [30.0 + 12 * k for k in range(1, 14)] + [190.0] * 10  # straight down at constant speed
    assert _feed(ShelfFallDetector(_region()), steady) == []
    held = _feed(ShelfFallDetector(_region()), falling, people=[(60, 0, 140, 200)])  # inside a person's box
    assert held == []


@pytest.mark.parametrize("restitution", [0.4, 0.5])
@pytest.mark.parametrize("fps", [20.0, 25.0])
def test_a_bounce_is_no_second_fall(restitution, fps):
    # the generator's own bounce: its apex (restitution² of the drop, 0.16-0.25) once passed as a new fall
    g = 9.81 * 200 / 2.0
    drop = synthetic.Drop(t_release=3.0, x=100.0, y_bottom=20.0, y_floor=190.0, w=8.0, h=8.0, colour=(20, 20, 20),
                          round=False, vx=0.0, restitution=restitution, g=g)
    ys = [drop.y_bottom if k / fps < drop.t_release else drop.bottom_at(k / fps)[1] for k in range(round(6 * fps))]
    detector = ShelfFallDetector(_region())
    events = _feed(detector, ys, fps)
    assert [round(event.release_s, 1) for event in events] == [3.0]
    assert detector.rejected["bounce"] == 1


def test_an_item_seen_in_two_parts_is_one_fall():
    g = 9.81 * 200 / 2.0
    bottoms = [30.0] * 75 + [30.0 + 0.5 * g * (k / 25) ** 2 for k in range(1, 16) if 30.0 + 0.5 * g * (k / 25) ** 2 < 190] + [190.0] * 10
    detector = ShelfFallDetector(_region())
    events = []
    for index, y in enumerate(bottoms):  # a tall dark item with a light band across its middle: two blobs
        rgb = np.full((200, 200, 3), 160, np.uint8)
        cv2.rectangle(rgb, (96, round(y) - 8), (104, round(y) - 1), (20, 20, 20), -1)
        cv2.rectangle(rgb, (96, round(y) - 22), (104, round(y) - 15), (20, 20, 20), -1)
        events += detector.update(index / 25, planes(rgb))
    assert len(events) == 1


def test_fall_alerts_cool_down_per_zone_and_never_repeat(tmp_path):
    at = lambda s: START + timedelta(seconds=s)  # noqa: E731
    events = pl.DataFrame({"event_id": ["a", "b", "c", "d"], "zone": ["z1", "z1", "z2", "z1"],
                           "release_utc": [at(0), at(100), at(50), at(400)]})
    config_file = tmp_path / "watershop.yaml"
    config_file.write_text(yaml.safe_dump({"shops": [{"id": "s1", "timezone": "UTC", "cameras": [CAMERA]}]}))
    cfg = load_config(config_file)  # no channel configured: alerts are logged only
    alerts = falling_object_alerts(events, CAMERA, cfg.alerts.rules, "s1", at(500).timestamp(), SOURCE_SHELF)
    first = deliver(cfg, "s1", alerts[:2], {})  # the first segment: a, then b within its zone's cooldown
    assert (first.delivered, first.suppressed) == (1, 1)
    again = deliver(cfg, "s1", alerts, {})  # a later segment's run sees every fall again
    assert (again.delivered, again.suppressed, again.already_logged) == (2, 1, 1)  # c and d; b still too close
    log = read_log(cfg, "s1")
    assert sorted(log["event_id"].to_list()) == ["a", "c", "d"] and set(log["channel"]) == {LOG}


# --------------------------------------------------------------------------------------------
# near-live, end to end


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", _Hook.received
    server.shutdown()


def _workspace(tmp_path: Path, webhook_url: str) -> Path:
    cameras = synthetic.camera_config([CAMERA])
    cameras["counter"] = None  # a camera without shelf zones
    config = {"shops": [{"id": "s1", "timezone": "UTC", "cameras": cameras}], "partitions_start": "2026-01-01",
              "alerts": {"webhook_url": webhook_url}, "shelf": {"store_stills": True}}
    path = tmp_path / "watershop.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_segments_alert_near_live_and_the_camera_day_reuses_them(tmp_path, webhook):
    url, received = webhook
    config_file = _workspace(tmp_path, url)
    cfg = load_config(config_file)
    plan = synthetic.plan_shelf(40, 9, CAMERA, drops=3, reaches=1, walkers=1, carts=0, light_steps=0, flicker_bursts=0)
    paths, truth = synthetic.write_shelf_segments(cfg.footage_root, CAMERA, START, 40, 9, segment_s=20, plan=plan)
    bad = paths[0].parent / "59.00.mp4"  # a truncated segment
    bad.write_bytes(paths[0].read_bytes()[:4000])
    now = START.timestamp() + 120
    for path in [*paths, bad]:
        os.utime(path, (now - 60, now - 60))

    cursor, requests = new_segments(cfg, {}, now)
    assert sorted(path for _, path, _ in requests) == sorted(str(p) for p in [*paths, bad])
    assert new_segments(cfg, cursor, now)[1] == []  # nothing new on the next tick
    resource = WatershopResource(config_path=str(config_file))
    for shop_id, path, _ in requests + requests[:1]:  # the first segment twice
        result = shelf_segment_job.execute_in_process(
            run_config={"ops": {"falls_in_segment": {"config": {"shop_id": shop_id, "path": path}}}},
            resources={"watershop": resource})
        assert result.success

    # alerts: one per zone within the cooldown (all three drops fall within 40 s)
    assert len(received) == 1 and received[0]["zone"] == synthetic.zone_name(CAMERA)
    assert received[0]["kind"] == "falling_object" and received[0]["camera"] == CAMERA
    log = read_log(cfg, "s1")
    assert log.select("kind", "camera", "channel", "status").rows() == [("falling_object", CAMERA, "webhook", "delivered")]

    day = process_shelf_camera_day(cfg, "s1", CAMERA, START.date())
    statuses = dict(zip(day.files["path"].to_list(), day.files["status"].to_list()))
    assert sorted(statuses.values()) == [QUARANTINED, REUSED, REUSED]
    assert "truncated" in day.files.filter(pl.col("status") == QUARANTINED)["reason"][0]
    assert day.events["event_id"].n_unique() == day.events.height
    truth_s = sorted((t - START).total_seconds() for t in truth["release_utc"].to_list())
    found_s = sorted((t - START).total_seconds() for t in day.events["release_utc"].to_list())
    assert len(found_s) == len(truth_s) and all(abs(f - t) < 0.5 for f, t in zip(found_s, truth_s))

    # stills (on in this workspace) show the shelf zone's box only, never the whole frame
    for still in day.events["still"].to_list():
        image = cv2.imread(str(cfg.lake_root / still))
        assert image.shape[:2] == (309, 519)  # the zone box (60,20)-(579,329), cut to whole work pixels
    # the Dagster asset of the camera-day, and a camera without shelf zones (empty, no decoding)
    defs = build_shelf_definitions(WorkspacePartitions.from_config(cfg))
    for camera, events in ((CAMERA, len(truth_s)), ("counter", 0)):
        key = camera_day_key("s1", camera, START.date())
        assert dg.materialize(list(defs.assets), partition_key=key, resources={"watershop": resource}).success
        stored = lake.read_dataset(cfg.lake_root, catalog.FALLING_OBJECT_EVENTS, shop_id="s1", date=START.date(), camera=camera)
        assert stored.height == events
    files = lake.read_dataset(cfg.lake_root, catalog.FALLING_OBJECT_FILES, shop_id="s1", date=START.date(), camera=CAMERA)
    assert PROCESSED not in files["status"].to_list()  # nothing was detected twice
    assert shelf_segment_job.name == SEGMENT_JOB
