"""Synthetic supermarket footage: deterministic scenes, consistent ground truth, both layouts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import numpy as np
import polars as pl
import pytest

from watershop_dagster.config import ShopConfig
from watershop_dagster.synthetic import supermarket as sm
from watershop_dagster.synthetic.footage import frigate_path
from watershop_dagster.vision.decode import video_info

START = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)


def test_views_and_plans_are_deterministic_and_vary_by_camera():
    assert sm.camera_view("a", 0, 5) == sm.camera_view("a", 0, 5)
    assert sm.camera_view("a", 0, 5) != sm.camera_view("a", 0, 6)
    left, right = sm.camera_view("a", 0, 5), sm.camera_view("b", 1, 5)
    assert not left.mirrored and right.mirrored
    assert left.zone("entrance").box[0] == 0.0 and right.zone("entrance").box[2] == 1280.0
    view = sm.camera_view("a", 0, 5)
    assert sm.plan_shoppers(view, 300, 7) == sm.plan_shoppers(view, 300, 7)
    assert sm.plan_shoppers(view, 300, 7) != sm.plan_shoppers(view, 300, 8)


def test_zone_config_is_frigate_shaped_with_every_kind():
    zones = sm.camera_view("aisle_3", 2, 1).frigate_zones()
    assert sorted(z["kind"] for z in zones.values()) == sorted(sm.ZONE_KINDS)
    for zone in zones.values():
        values = [float(v) for v in zone["coordinates"].split(",")]
        assert len(values) == 8 and all(0.0 <= v <= 1.0 for v in values)
        assert zone["inertia"] == 3 and zone["loitering_time"] > 0


def test_plan_has_a_still_shopper_and_everyone_leaves_before_the_end():
    shoppers = sm.plan_shoppers(sm.camera_view("a", 0, 3), 300, 3, still_shoppers=1)
    stills = [s for s in shoppers if s.still]
    assert len(stills) == 1
    longest_pause = max(leg.t1 - leg.t0 for leg in stills[0].legs if leg.start == leg.end)
    assert longest_pause >= 180.0
    assert all(s.t_exit < 300 for s in shoppers) and len(shoppers) >= 4


def test_ground_truth_is_consistent():
    duration, fps, size = 300.0, 5.0, (640, 360)
    scene = sm.scene_for("cam", 0, START, duration, seed=13, fps=fps, size=size)
    truth = sm.scene_truth(scene, duration)
    boxes = truth.boxes
    assert boxes.schema == sm.BOX_SCHEMA
    assert (boxes["x1"] >= 0).all() and (boxes["x2"] <= size[0]).all() and (boxes["y2"] <= size[1]).all()
    assert boxes["visibility"].is_between(0, 1).all() and (boxes["visibility"] < 0.3).any()  # people occlude each other
    life = boxes.group_by("person").agg(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
    visits = truth.zone_visits.join(life, on="person")
    assert (visits["exit_ts"] >= visits["enter_ts"]).all()
    assert ((visits["enter_ts"] >= visits["first"]) & (visits["exit_ts"] <= visits["last"])).all()
    for _, group in truth.zone_visits.sort("enter_ts").group_by(["person", "zone"]):
        assert (group["enter_ts"].shift(-1).drop_nulls() > group["exit_ts"].head(group.height - 1)).all()
    # every shopper comes in and goes out through the entrance once
    footfall = truth.footfall.pivot(on="direction", index="person", values="ts")
    assert footfall.height == len(scene.shoppers) and (footfall["out"] > footfall["in"]).all()
    # the still shopper loiters in the zone it stands in, and loitering follows from the visits
    still = next(s for s in scene.shoppers if s.still)
    assert still.person in truth.loitering["person"].to_list()
    joined = truth.loitering.join(truth.zone_visits, left_on=["person", "zone", "start_ts"], right_on=["person", "zone", "enter_ts"])
    assert joined.height == truth.loitering.height and (joined["dwell_s"] >= 20.0).all()
    assert set(truth.zone_config["cameras"]["cam"]["zones"]) == set(truth.zone_visits["zone"])


def test_frames_are_a_pure_function_of_time_and_light_changes_them():
    view = sm.camera_view("cam", 0, 2)
    scene = sm.SupermarketScene(view, [], START, 5.0, (320, 180), lighting=sm.Lighting(((1.0, 0.3),), drift=0.0), sensor_noise=0.0)
    assert np.array_equal(scene.render(3), scene.render(3))
    assert scene.render(10).mean() > scene.render(0).mean() + 10


@pytest.mark.slow
def test_write_day_in_both_layouts(tmp_path):
    shop = ShopConfig(id="market", timezone="Europe/Berlin", cameras=["entrance", "aisle"], opening_time=time(8, 0))
    day = date(2024, 6, 3)
    truth = sm.write_supermarket_day(tmp_path / "plain", shop, day, "plain", duration_s=12.0, size=(320, 180), fps=5.0, seed=4)
    assert sorted(truth.zone_config["cameras"]) == ["aisle", "entrance"]
    for camera in shop.cameras:
        files = list((tmp_path / "plain" / camera / "2024-06-03").glob("*.mp4"))
        assert [f.name for f in files] == ["08-00-00.mp4"]
        info = video_info(files[0])
        assert (info.width, info.height) == (320, 180) and abs(info.duration_s - 12.0) < 0.3
    gt = tmp_path / "plain" / "ground_truth" / "supermarket" / "market" / "2024-06-03"
    assert {p.name for p in gt.iterdir()} == {"boxes.parquet", "zone_visits.parquet", "loitering.parquet", "footfall.parquet", "zones.yaml"}

    sm.write_supermarket_day(tmp_path / "frigate", shop, day, "frigate", duration_s=12.0, size=(320, 180), fps=5.0, seed=4)
    start_utc = datetime(2024, 6, 3, 6, 0, tzinfo=UTC)  # 08:00 in Berlin (summer time)
    assert frigate_path(tmp_path / "frigate", "aisle", start_utc).exists()
    assert len(list((tmp_path / "frigate" / "recordings").rglob("*.mp4"))) == 4  # 2 cameras x 2 segments
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []


def test_loiterers_stay_past_the_zone_threshold_and_leave_the_others_as_planned():
    view = sm.camera_view("a", 0, 3)
    plain = sm.plan_shoppers(view, 150, 3, still_shoppers=0)
    with_loiterers = sm.plan_shoppers(view, 150, 3, still_shoppers=0, loiterers=2)
    assert with_loiterers[: len(plain)] == plain
    loiterers = with_loiterers[len(plain):]
    assert len(loiterers) == 2 and all(s.t_exit < 149 for s in loiterers)
    for shopper in loiterers:
        (stop,) = [leg for leg in shopper.legs if leg.start == leg.end]
        zone = next(z for z in view.zones if z.contains(*stop.start))
        assert zone.kind != "entrance" and stop.t1 - stop.t0 > zone.loitering_time
    assert sm.plan_shoppers(view, 30, 3, still_shoppers=0, loiterers=2) == sm.plan_shoppers(view, 30, 3, still_shoppers=0)


def test_ground_truth_has_the_loitering_events():
    view = sm.camera_view("cam", 0, 4)
    shoppers = sm.plan_shoppers(view, 60, 4, shoppers_per_minute=2, still_shoppers=0, pause_s=(3, 8), loiterers=1)
    scene = sm.SupermarketScene(view, shoppers, START, 5.0, (640, 360))
    truth = sm.scene_truth(scene, 60)
    assert truth.loitering.height >= 1
    assert set(truth.loitering["person"]) == {s.person for s in shoppers if s.person.startswith("cam-l")}


def test_visit_rule_bridges_short_absences_and_needs_inertia():
    ts = [datetime(2024, 6, 3, 8, 0, second, tzinfo=UTC) for second in range(20)]
    # runs (first, last row), one frame a second: a 1-frame touch, then 3 frames, an absence of
    # 1 s (bridged), 1 frame; later (5 s gap) 2 frames only
    runs = [(0, 0), (2, 4), (6, 6), (12, 13)]
    assert sm.visits_from_runs(runs, ts, inertia=3, exit_debounce_s=2.0) == [(ts[2], ts[6])]
    assert sm.visits_from_runs(runs, ts, inertia=1, exit_debounce_s=0.0) == [(ts[a], ts[b]) for a, b in runs]


@pytest.mark.parametrize("seed", [26, 28])  # each has a shopper touching a zone for fewer than `inertia` frames
def test_zone_analytics_on_perfect_tracks_reproduce_the_truth(seed):
    """The truth applies the product's visit rule to the true foot points, independently of the
    zone analytics: fed the true foot points as tracks, the analytics must report exactly the
    truth, so what the benchmark measures is the tracker's error, not a difference of definitions."""
    from watershop_dagster.zones import analyse_observations

    size, fps, duration = (640, 360), 15.0, 60
    view = sm.camera_view("cam", 0, seed)
    shoppers = sm.plan_shoppers(view, duration, seed, shoppers_per_minute=10, still_shoppers=0, pause_s=(3, 15))
    scene = sm.SupermarketScene(view, shoppers, START, fps, size)
    truth = sm.scene_truth(scene, duration)
    shop = ShopConfig.model_validate({"id": "s", "cameras": truth.zone_config["cameras"]})
    observations = truth.boxes.select(  # boxes whose bottom centre is the true foot point
        "camera", track_id="person", ts="ts", x1=pl.col("foot_x") - 1, y1="y1", x2=pl.col("foot_x") + 1, y2="foot_y",
        frame_width=pl.lit(size[0], pl.Int64), frame_height=pl.lit(size[1], pl.Int64),
        identity=pl.lit(None, pl.Utf8), score=pl.lit(1.0))
    visits = analyse_observations(observations, shop.zones("cam")).visits
    key = ["person", "zone", "enter_ts", "exit_ts"]
    reported = visits.select(key[1:], person="track_id").select(key).sort(key)
    assert reported.equals(truth.zone_visits.select(key).sort(key))
    # ... which the raw frame-by-frame presence would not
    assert sm.frame_by_frame_visits(truth.boxes, view, size).height > truth.zone_visits.height
