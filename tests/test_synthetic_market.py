"""The demo supermarket's plan: receipts that follow the filmed shoppers, its config entry and experiment."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from watershop_dagster.config import init_workspace, load_config
from watershop_dagster.demo import (
    EXPERIMENT_ZONES,
    MARKET_EXPERIMENT,
    MARKET_SHOP,
    add_market_shop,
    declare_experiment,
    with_market_shop,
)
from watershop_dagster.experiment.design import load_spec
from watershop_dagster.receipts.generate import CATEGORIES
from watershop_dagster.synthetic import supermarket as sm
from watershop_dagster.synthetic.market import (
    CATEGORY_ZONES,
    MARKET_CAMERAS,
    market_cameras,
    market_receipts,
    market_zone_map,
    plan_market_day,
    shopper_stops,
)
from watershop_dagster.vocabulary import RECEIPT_COLUMNS

TZ = ZoneInfo("Asia/Kolkata")
DAY = date(2026, 11, 27)


def _plan(day: date = DAY, number: int = 0, seed: int = 7):
    return plan_market_day(TZ, day, number, seed, duration_s=90.0, fps=10.0, size=(640, 360))


def test_every_category_has_one_zone_on_a_camera():
    categories = [c for cs in CATEGORY_ZONES.values() for c in cs]
    assert len(categories) == len(set(categories)) and set(categories) <= set(CATEGORIES)
    zones = {name for camera in market_cameras().values() for name in camera["zones"]}
    assert set(CATEGORY_ZONES) <= zones and len(zones) == 5 * len(MARKET_CAMERAS)
    assert market_zone_map().zone_on("dairy", DAY) == "shelf_fresh"


def test_checkout_share_ends_payers_at_the_checkout_and_keeps_the_default_plan():
    view = sm.camera_view("fresh", 0, 0)
    assert sm.plan_shoppers(view, 300, 3) == sm.plan_shoppers(view, 300, 3, checkout_share=None)
    shoppers = sm.plan_shoppers(view, 300, 3, still_shoppers=0, checkout_share=0.75)
    kinds = [[stop.kind for stop in shopper_stops(s, view)] for s in shoppers]
    assert all("checkout" not in k[:-1] for k in kinds)  # the checkout, if at all, comes last
    payers = sum(k[-1] == "checkout" for k in kinds)
    assert 0.5 * len(kinds) <= payers < len(kinds)


def test_one_receipt_per_shopper_who_paid_with_the_zones_they_stopped_at():
    planned = _plan()
    lines = market_receipts(planned, DAY, 7)
    assert lines.columns == list(RECEIPT_COLUMNS) and lines.height > 0
    assert market_receipts(_plan(), DAY, 7).equals(lines)  # a pure function of (shop, day, seed)
    receipts = lines.group_by("receipt_id", "till").agg(pl.col("timestamp").first(), pl.col("category").unique())
    for till, camera_day in enumerate(planned, start=1):
        paid = [shopper_stops(s, camera_day.view) for s in camera_day.shoppers]
        paid = [stops for stops in paid if stops and stops[-1].kind == "checkout"]
        mine = receipts.filter(pl.col("till") == f"T{till}").sort("receipt_id")
        assert mine.height == len(paid)
        stamps = sorted(camera_day.local_start.replace(tzinfo=None) + timedelta(seconds=round(stops[-1].end_s))
                        for stops in paid)
        assert sorted(datetime.fromisoformat(t) for t in mine["timestamp"]) == stamps
        allowed = {c for stops in paid for stop in stops for c in CATEGORY_ZONES.get(stop.zone, ())}
        assert {c for cs in mine["category"] for c in cs} <= allowed
    assert (lines["line_total"] - (lines["quantity"] * lines["unit_price"] - lines["discount"])).abs().max() < 0.011


def test_a_treated_zone_sells_more():
    days = [DAY + timedelta(days=k) for k in range(12)]
    plans = [_plan(day, number) for number, day in enumerate(days)]

    def shelf_units(treated):
        frames = [market_receipts(p, day, 7, treated, 0.5) for p, day in zip(plans, days)]
        return pl.concat(frames).filter(pl.col("category").is_in(CATEGORY_ZONES["shelf_fresh"])).height

    assert shelf_units(frozenset({"shelf_fresh"})) > 1.2 * shelf_units(frozenset())


def test_the_supermarket_joins_the_demo_config_once(tmp_path):
    config = init_workspace(tmp_path, shop_id="demo_shop", timezone="Asia/Kolkata")
    config_file = tmp_path / "watershop.yaml"
    add_market_shop(config_file)
    config = load_config(config_file)
    assert config.shop_ids == ["demo_shop", MARKET_SHOP]
    market = config.shop(MARKET_SHOP)
    assert market.receipts is not None and {z.name for z in market.zones()} == set(
        name for camera in market_cameras().values() for name in camera["zones"])
    assert "# Relative paths are resolved" in config_file.read_text()  # the comments stay
    before = config_file.read_text()
    add_market_shop(config_file)
    assert config_file.read_text() == before


def test_the_demo_experiment_follows_the_window(tmp_path):
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    assert declare_experiment(tmp_path, days[:2], 7) is None
    assignment = declare_experiment(tmp_path, days, 7)
    assert set(assignment["zone"]) == set(EXPERIMENT_ZONES) and set(assignment["date"]) == set(days[1:])
    assert assignment.filter(pl.col("arm") == "treatment").height == len(EXPERIMENT_ZONES)  # half of the 2 x 4
    later = [d + timedelta(days=1) for d in days]
    moved = declare_experiment(tmp_path, later, 7)  # an older demo's experiment is declared afresh
    assert set(moved["date"]) == set(later[1:]) and load_spec(tmp_path, MARKET_EXPERIMENT).start == later[1]


@pytest.mark.parametrize("text", ["paths:\n  lake: lake\n"])
def test_a_config_without_shops_is_refused(text):
    with pytest.raises(ValueError, match="shops"):
        with_market_shop(text)


def test_longer_stops_fill_bigger_baskets():
    dwell, items = [], []
    for number in range(8):
        day = DAY + timedelta(days=number)
        planned = _plan(day, number)
        lines = market_receipts(planned, day, 7)
        for till, camera_day in enumerate(planned, start=1):
            stops = [shopper_stops(s, camera_day.view) for s in sorted(camera_day.shoppers, key=lambda s: s.t_entry)]
            paid = [s for s in stops if s and s[-1].kind == "checkout"]
            for number_paid, shopper in enumerate(paid, start=1):
                receipt = lines.filter(pl.col("receipt_id") == f"{day:%Y%m%d}-T{till}-{number_paid:04d}")
                dwell.append(sum(stop.dwell_s for stop in shopper if stop.kind in ("shelf", "promo")))
                items.append(receipt.height)
    assert len(dwell) >= 40 and float(np.corrcoef(dwell, items)[0, 1]) > 0.5
