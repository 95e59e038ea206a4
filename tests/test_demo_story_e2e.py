"""End to end: two days of the demo story through vision, identity, POS and dbt tell one story in the marts."""

from __future__ import annotations

from datetime import date, time

import duckdb
import polars as pl
import pytest

from watershop_dagster.config import CONFIG_FILENAME
from watershop_dagster.demo import build_demo, demo_cast, summary
from watershop_dagster.fixtures import FIXTURES_ENV_VAR
from watershop_dagster.orchestration.runner import run_range
from watershop_dagster.synthetic.story import KIND_WALK_IN, plan_story

# About 3 min on an idle 2-core machine (two camera-days of vision, four Dagster runs, dbt); the
# timeout leaves room for a busy one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

START, END = date(2026, 11, 27), date(2026, 11, 28)
SEED = 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory, fixtures_root, faces_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FIXTURES_ENV_VAR, str(fixtures_root))
        root = tmp_path_factory.mktemp("demo_story") / "ws"
        config = build_demo(root, START, END, SEED)
        runs = run_range(START, END, root / CONFIG_FILENAME)
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
