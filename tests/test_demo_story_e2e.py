"""End to end: two days of the demo story through vision, identity, POS and dbt tell one story in the marts,
and the demo supermarket's three days through behaviour, receipts and dbt show zones, dwell and sales that agree."""

from __future__ import annotations

from datetime import date, time

import duckdb
import polars as pl
import pytest

from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.demo import (
    EXPERIMENT_ZONES,
    MARKET_EXPERIMENT,
    MARKET_SHOP,
    build_demo,
    build_market,
    demo_cast,
    summary,
)
from watershop_dagster.fixtures import FIXTURES_ENV_VAR
from watershop_dagster.orchestration.runner import run_range
from watershop_dagster.synthetic.market import (
    CATEGORY_ZONES,
    MARKET_CAMERAS,
    plan_market_day,
    shopper_stops,
)
from watershop_dagster.synthetic.story import KIND_WALK_IN, plan_story

# About 3 min on an idle 2-core machine (two camera-days of vision, four Dagster runs, dbt), and the
# supermarket's three days about 2 min more; the timeout leaves room for a busy one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

START, END = date(2026, 11, 27), date(2026, 11, 28)
SEED = 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory, fixtures_root, faces_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FIXTURES_ENV_VAR, str(fixtures_root))
        root = tmp_path_factory.mktemp("demo_story") / "ws"
        build_demo(root, START, END, SEED)
        market_start, _ = build_market(root / CONFIG_FILENAME, END, SEED, days=3)
        config = load_config(root / CONFIG_FILENAME)
        runs = run_range(START, END, root / CONFIG_FILENAME, [config.shops[0].id])
        runs += run_range(market_start, END, root / CONFIG_FILENAME, [MARKET_SHOP])
        assert [r.failed_steps for r in runs if not r.success] == []
        cast, _, _ = demo_cast(SEED)
    story = plan_story(cast, config.shops[0], [START, END], SEED)
    return config, story


def _marts(config, sql):
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        return db.execute(sql).fetchall()


def test_traffic_spans_the_day_and_first_last_customers_are_near_opening_and_closing(demo):
    config, _ = demo
    hours = {hour for (hour,) in _marts(config, "select distinct hour from traffic_per_hour")}
    assert len(hours) >= 5 and hours & {7, 8, 9} and hours & {17, 18, 19}
    rows = _marts(config, "select date, first_entry::time, last_exit::time from first_last_customer order by date")
    assert [day for day, _, _ in rows] == [START, END]
    for _, first_in, last_out in rows:
        assert time(6, 0) <= first_in <= time(6, 30)
        assert time(20, 15) <= last_out <= time(21, 0)


def test_most_filmed_sales_link_to_a_visit_and_walk_ins_do_not(demo):
    config, story = demo
    sales = story.sales_frame(config.shops[0].id)
    links = pl.DataFrame(_marts(config, "select transaction_id, visit_id from transaction_visit_links"),
                         schema=["transaction_id", "visit_id"], orient="row")
    joined = sales.join(links, on="transaction_id", how="left")
    assert joined["visit_id"].is_not_null().sum() > 0
    filmed = joined.filter(pl.col("kind") != KIND_WALK_IN)
    assert filmed["visit_id"].is_not_null().mean() >= 0.8
    walk_ins = joined.filter(pl.col("kind") == KIND_WALK_IN)
    assert walk_ins["visit_id"].null_count() == walk_ins.height


def test_customers_return_alerts_fire_and_the_summary_tells_it(demo):
    config, story = demo
    ((returning,),) = _marts(config, "select coalesce(sum(returning_customers), 0) from daily_visits")
    assert returning > 0
    ((new_on_day_two,),) = _marts(config, f"select new_customers from daily_visits where date = '{END}'")
    assert new_on_day_two >= 1  # the newcomers arrive on the second day
    files = list((config.lake_root / "alerts").glob("shop_id=*/date=*/*.parquet"))
    roles = pl.concat([pl.read_parquet(f) for f in files])["role"].to_list()
    assert set(roles) == {"vip", "blocked"}
    ((staff_as_customers,),) = _marts(
        config, f"select count(*) from visit_log where is_customer and person_key = 'staff/{story.cast.staff}'")
    assert staff_as_customers == 0
    text = summary(config)
    assert "2 shop-days" in text and "alerts: " in text and "blocked" in text and "vip" in text


# --- the supermarket ----------------------------------------------------------------------------

MARKET_DAYS = [date(2026, 11, 26), START, END]


def test_every_zone_is_visited_and_dwell_is_positive(demo):
    config, _ = demo
    rows = _marts(config, f"""select camera, zone, count(*), min(dwell_s), avg(dwell_s) from zone_visits
                             where shop_id = '{MARKET_SHOP}' and is_customer group by camera, zone""")
    zones = {zone.name for zone in config.shop(MARKET_SHOP).zones()}
    assert {zone for _, zone, _, _, _ in rows} == zones and len(zones) == 5 * len(MARKET_CAMERAS)
    for camera, zone, visits, shortest, mean in rows:
        assert zone.endswith(f"_{camera}") and visits >= 1 and shortest >= 0 and mean > 0
    ((store_days,),) = _marts(config, f"select count(distinct date) from zone_visits where shop_id = '{MARKET_SHOP}'")
    assert store_days == len(MARKET_DAYS)


def test_receipts_join_the_zones_shoppers_stopped_at(demo):
    config, _ = demo
    lines = _marts(config, f"select category, zone from receipt_lines where shop_id = '{MARKET_SHOP}'")
    assert lines and all(zone is not None for _, zone in lines)
    assert {(category, zone) for category, zone in lines} <= {
        (category, zone) for zone, categories in CATEGORY_ZONES.items() for category in categories}
    # sales and visitors meet in the same zone-hours: the till rang up the shoppers the camera saw
    ((both, sold),) = _marts(config, f"""select count(*) filter (where visitors > 0 and sales > 0),
                                        count(*) filter (where sales > 0)
                                        from fct_zone_hour where shop_id = '{MARKET_SHOP}'""")
    assert sold > 0 and both / sold >= 0.8
    # dwell vs sales of every zone that sells, over its three filmed zone-hours
    fits = _marts(config, f"""select zone, n, correlation from zone_dwell_sales_correlation
                              where shop_id = '{MARKET_SHOP}' and grain = 'hour'""")
    selling = {zone: (n, r) for zone, n, r in fits if zone in CATEGORY_ZONES}
    assert set(selling) == set(CATEGORY_ZONES) and all(n == len(MARKET_DAYS) for n, _ in selling.values())
    assert sum(r is not None for _, r in selling.values()) >= len(CATEGORY_ZONES) - 1


def test_conversion_is_plausible_and_matches_the_plan(demo):
    config, _ = demo
    shop = config.shop(MARKET_SHOP)
    rows = _marts(config, f"""select date, store_visitors, receipts, conversion_rate from fct_store_day_behaviour
                              where shop_id = '{MARKET_SHOP}' order by date""")
    assert [day for day, _, _, _ in rows] == MARKET_DAYS
    planned = [plan_market_day(shop.tz, day, number, SEED, duration_s=90.0, fps=10.0, size=(640, 360))
               for number, day in enumerate(MARKET_DAYS)]
    for (day, visitors, receipts, conversion), cameras in zip(rows, planned):
        shoppers = sum(len(camera.shoppers) for camera in cameras)
        payers = sum(any(stop.kind == "checkout" for stop in shopper_stops(shopper, camera.view))
                     for camera in cameras for shopper in camera.shoppers)
        assert receipts == payers > 0  # one receipt per shopper filmed at a till
        assert 0.7 * shoppers <= visitors <= 1.3 * shoppers, (day, visitors, shoppers)
        assert 0.3 <= conversion <= 1.0, (day, receipts, visitors)


def test_the_experiment_marts_hold_the_demo_experiment(demo):
    config, _ = demo
    arms = _marts(config, f"select zone, date, arm from experiment_assignment where experiment = '{MARKET_EXPERIMENT}'")
    assert {zone for zone, _, _ in arms} == set(EXPERIMENT_ZONES) and {d for _, d, _ in arms} == set(MARKET_DAYS[1:])
    results = _marts(config, f"select shop_id, status from experiment_results where experiment = '{MARKET_EXPERIMENT}'")
    assert [shop for shop, _ in results] == [MARKET_SHOP]
    text = summary(config)
    assert "supermarket (demo_market" in text and "conversion" in text and f"experiment {MARKET_EXPERIMENT}" in text
