"""The behaviour <-> sales marts served: /v1/zones/hourly (fct_zone_hour) and /v1/store-days/behaviour
(fct_store_day_behaviour), over real HTTP with the same key rules as the other zone routes, from a
workspace whose marts the pipeline's dbt runner built from tests/test_dbt_behaviour_sales.py's lake."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import published_workspace
from tests.test_dbt_behaviour_sales import DAIRY_HOURS, DAY1, DAY2, DAY3, SHOP, fit, write_lake
from tests.test_dbt_labour import write_staff_tracks
from tests.test_serving_api import AUTH
from tests.test_serving_zones import served
from watershop_dagster.config import CONFIG_FILENAME, load_config

pytestmark = pytest.mark.slow

CONFIG = f"""\
partitions_start: "2025-01-01"
shops:
  - id: {SHOP}
    timezone: UTC
    cameras: [door, floor]
"""
ROUTES = ("/v1/zones/hourly", "/v1/store-days/behaviour", "/v1/zones/dwell-sales-correlation",
          "/v1/store-hours/labour")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The supermarket workspace, its marts built by the pipeline's dbt runner and published, served."""
    def fill(config) -> None:
        write_lake(config.lake_root)
        write_staff_tracks(config.lake_root)

    config = published_workspace(tmp_path_factory.mktemp("market"), CONFIG, fill)
    with served(config) as client:
        yield client


def test_the_routes_need_the_api_key(api):
    schema = api.get("/openapi.json").json()
    for path in ROUTES:
        assert schema["paths"][path]["get"]["security"], path
        for headers in ({}, {"X-API-Key": "wrong"}):
            assert api.get(path, headers=headers).status_code == 401, path


def test_zone_hours_with_visitors_or_sales(api):
    body = api.get("/v1/zones/hourly", params={"shop_id": SHOP, "start": DAY2.isoformat(), "end": DAY2.isoformat()},
                   headers=AUTH).json()
    assert [(row["hour"], row["zone"], row["visitors"], row["total_dwell_s"], row["sales"], row["sales_per_visitor"])
            for row in body["items"]] == [
        (9, "dairy", 1, 20.0, 0.0, 0.0), (9, "entrance", 1, 6.0, 0.0, 0.0),
        (10, "bakery", 1, 50.0, 4.5, 4.5), (10, "dairy", 1, 240.0, 6.0, 6.0),
        (12, "dairy", 0, 0.0, 1.5, None)]  # sales, nobody seen
    dairy = api.get("/v1/zones/hourly", params={"zone": "dairy", "limit": 2, "offset": 1}, headers=AUTH).json()
    assert (dairy["total"], [(row["date"], row["hour"]) for row in dairy["items"]]) == (
        5, [(DAY1.isoformat(), 10), (DAY2.isoformat(), 9)])


def test_store_days_with_conversion_yield_and_zone_entry_rate(api):
    body = api.get("/v1/store-days/behaviour", params={"shop_id": SHOP}, headers=AUTH).json()
    assert [(row["date"], row["store_visitors"], row["receipts"], row["conversion_rate"], row["shopper_yield"],
             row["zone_entry_rate"], row["average_transaction_value"]) for row in body["items"]] == [
        (DAY1.isoformat(), 4, 3, 0.75, 3.15, 0.75, 4.2),
        (DAY2.isoformat(), 4, 2, 0.5, 3.0, 0.75, 6.0),
        (DAY3.isoformat(), 1, 0, 0.0, 0.0, 0.0, None)]  # entries, no receipts


def test_store_hours_with_labour_and_sales_per_labour_hour(api):
    body = api.get("/v1/store-hours/labour", params={"shop_id": SHOP, "start": DAY1.isoformat(),
                                                     "end": DAY1.isoformat(), "limit": 3, "offset": 1},
                   headers=AUTH).json()
    assert body["total"] == 6
    assert [(row["hour"], row["staff_on_floor"], row["labour_hours"], row["store_visitors"], row["receipts"],
             row["sales"], row["sales_per_labour_hour"], row["visitors_per_staff"]) for row in body["items"]] == [
        (9, 2, 1.2167, 4, 1, 7.25, 5.96, 3.2877),  # anna 58 min + bob 15 min
        (10, 1, 1.0, 0, 1, 4.5, 4.5, 0.0),
        (11, 1, 0.0833, 0, 0, 0.0, 0.0, 0.0)]
    late = api.get("/v1/store-hours/labour", params={"start": DAY2.isoformat()}, headers=AUTH).json()["items"]
    assert [(row["date"], row["hour"], row["labour_hours"], row["sales_per_labour_hour"]) for row in late] == [
        (DAY2.isoformat(), 9, 0.0, None), (DAY2.isoformat(), 10, 0.0, None), (DAY2.isoformat(), 12, 0.0, None),
        (DAY2.isoformat(), 23, 0.5, 0.0), (DAY3.isoformat(), 9, 0.0, None)]


def test_dwell_sales_correlation_per_zone(api):
    body = api.get("/v1/zones/dwell-sales-correlation", params={"shop_id": SHOP, "grain": "hour"},
                   headers=AUTH).json()
    assert [(row["zone"], row["n"], row["status"]) for row in body["items"]] == [
        ("bakery", 2, "no_interval"), ("dairy", 5, "ok"), ("entrance", 2, "no_variation"),
        ("promo", 1, "too_few_observations")]
    dairy = body["items"][1]
    _, _, _, r, low, high, slope = fit(DAIRY_HOURS)
    assert [round(dairy[k], 6) for k in ("correlation", "ci_low", "ci_high", "slope_sales_per_dwell_minute")] == [
        r, low, high, slope]
    assert api.get("/v1/zones/dwell-sales-correlation", params={"grain": "week"}, headers=AUTH).status_code == 422


def test_the_routes_validate_like_the_others(api):
    assert api.get("/v1/zones/hourly", params={"shop_id": "nowhere"}, headers=AUTH).status_code == 404
    assert api.get("/v1/store-days/behaviour", params={"start": DAY2.isoformat(), "end": DAY1.isoformat()},
                   headers=AUTH).status_code == 422
    assert api.get("/v1/zones/hourly", params={"limit": 0}, headers=AUTH).status_code == 422


def test_a_workspace_without_the_marts_says_so(tmp_path):
    """A water shop's served file has no zone marts (the pipeline leaves them out): 404 naming them."""
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(tmp_path / CONFIG_FILENAME)
    config.marts_db.parent.mkdir(parents=True)
    with duckdb.connect(str(config.marts_db)) as con:
        con.execute("create table daily_revenue (shop_id varchar, date date)")
    with served(config) as client:
        for path in ROUTES:
            response = client.get(path, headers=AUTH)
            assert response.status_code == 404, (path, response.text)
            assert "no zone marts" in response.json()["detail"]
