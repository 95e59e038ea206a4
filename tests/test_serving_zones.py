"""The zone marts served: API endpoints (real HTTP, the same key rules) and the dashboard's Zones page,
over a workspace whose marts the pipeline's own dbt runner built from the tiny supermarket's lake
(tests/test_dbt_zones.py) and published."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import httpx
import pytest
import uvicorn

from tests.conftest import dashboard_page, published_workspace
from tests.test_dbt_zones import DAY, SHOP, write_lake
from tests.test_serving_api import AUTH, KEY, free_port, wait_until_up
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.serving import queries as q
from watershop_dagster.serving.api import create_app
from watershop_dagster.serving.marts import MartsReader

pytestmark = pytest.mark.slow

CONFIG = f"""\
partitions_start: "2025-01-01"
shops:
  - id: {SHOP}
    timezone: Asia/Kolkata
    cameras: [door, floor]
"""


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """The supermarket workspace, its marts built by the pipeline's dbt runner (time zones from the config)."""
    return published_workspace(tmp_path_factory.mktemp("market"), CONFIG, lambda config: write_lake(config.lake_root))


@contextmanager
def served(config) -> Iterator[httpx.Client]:
    """create_app with an explicit key, served by uvicorn in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config, api_key=KEY), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health")
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="module")
def api(market):
    with served(market) as client:
        yield client


ZONE_ROUTES = ("/v1/zones/dwell", "/v1/zones/loitering", "/v1/footfall/hourly")


def test_zone_routes_need_the_api_key(api):
    schema = api.get("/openapi.json").json()
    for path in ZONE_ROUTES:
        assert schema["paths"][path]["get"]["security"], path
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = api.get(path, headers=headers)
            assert response.status_code == 401, (path, response.text)


def test_dwell_per_zone(api):
    body = api.get("/v1/zones/dwell", params={"shop_id": SHOP, "start": DAY, "end": DAY}, headers=AUTH).json()
    assert body["total"] == 4
    by_zone = {(row["camera"], row["zone"]): row for row in body["items"]}
    assert list(by_zone) == [("door", "entrance"), ("door", "promo"), ("floor", "checkout"), ("floor", "dairy")]
    checkout = by_zone["floor", "checkout"]
    assert (checkout["visits"], checkout["people"], checkout["mean_dwell_s"], checkout["median_dwell_s"],
            checkout["p90_dwell_s"], checkout["loitering_events"]) == (2, 2, 90.0, 90.0, 114.0, 2)
    one = api.get("/v1/zones/dwell", params={"zone": "promo", "limit": 1}, headers=AUTH).json()
    assert (one["total"], one["items"][0]["mean_dwell_s"]) == (1, 55.0)
    later = api.get("/v1/zones/dwell", params={"start": "2025-06-03"}, headers=AUTH).json()
    assert later["total"] == 0


def test_loitering_list_newest_first_without_staff(api):
    body = api.get("/v1/zones/loitering", params={"shop_id": SHOP}, headers=AUTH).json()
    assert [(row["zone"], row["identity"], row["role"], row["alert_time"]) for row in body["items"]] == [
        ("checkout", "vip/ravi", "vip", "2025-06-02T10:41:15"),
        ("checkout", "c_1", "customer", "2025-06-02T10:06:45"),
        ("promo", "c_1", "customer", "2025-06-02T10:01:10"),
    ]
    page = api.get("/v1/zones/loitering", params={"limit": 1, "offset": 2}, headers=AUTH).json()
    assert (page["total"], [row["zone"] for row in page["items"]]) == (3, ["promo"])


def test_footfall_per_hour(api):
    body = api.get("/v1/footfall/hourly", params={"shop_id": SHOP, "start": DAY, "end": DAY}, headers=AUTH).json()
    assert [(row["hour"], row["entries"], row["exits"], row["occupancy"]) for row in body["items"]] == [
        (10, 2, 0, 2), (11, 0, 1, 1)]


def test_zone_routes_validate_like_the_others(api):
    assert api.get("/v1/zones/dwell", params={"shop_id": "nowhere"}, headers=AUTH).status_code == 404
    assert api.get("/v1/footfall/hourly", params={"start": DAY, "end": "2025-06-01"},
                   headers=AUTH).status_code == 422
    assert api.get("/v1/zones/loitering", params={"limit": 0}, headers=AUTH).status_code == 422


def test_a_workspace_without_zone_marts_says_so(tmp_path):
    """A water shop's served file has no zone marts (the pipeline leaves them out): 404 naming them."""
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(tmp_path / CONFIG_FILENAME)
    config.marts_db.parent.mkdir(parents=True)
    with duckdb.connect(str(config.marts_db)) as con:
        con.execute("create table daily_revenue (shop_id varchar, date date)")
    with served(config) as client:
        for path in ZONE_ROUTES:
            response = client.get(path, headers=AUTH)
            assert response.status_code == 404, (path, response.text)
            assert "no zone marts" in response.json()["detail"]


def test_dashboard_zones_page(market):
    app = dashboard_page(market, "zones", SHOP, DAY)
    assert [header.value for header in app.subheader] == ["Dwell per zone", "Loitering", "Footfall per hour"]
    shown = {metric.label: metric.value for metric in app.metric}
    assert shown == {"Loitering events": "3", "Entries": "2", "Exits": "1"}
    dwell = app.dataframe[0].value
    assert dwell.set_index("zone").loc["promo", "visits"] == 2


def test_the_zones_page_is_offered_only_when_the_zone_marts_have_data(market, tmp_path):
    from watershop_dagster.serving.dashboard import _has_zone_data

    assert _has_zone_data(MartsReader(market.marts_db))
    empty = tmp_path / "marts.duckdb"
    with duckdb.connect(str(empty)) as con:  # a water shop's marts: the zone marts exist, empty
        con.execute("create table zone_dwell_daily (shop_id varchar, date date)")
    assert not _has_zone_data(MartsReader(empty))
    assert not _has_zone_data(MartsReader(tmp_path / "never_built.duckdb"))
    with MartsReader(market.marts_db).connect() as con:
        assert q.has_zone_data(con, SHOP) and not q.has_zone_data(con, "elsewhere")
