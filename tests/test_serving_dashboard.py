"""The Streamlit dashboard: `watershop dashboard` in a subprocess, loaded in headless Chromium (Playwright);
the numbers on the pages are checked against SQL on the same marts file, and screenshots are saved.
Without Chromium, the pages still run in-process in Streamlit's AppTest on real served marts: the water
shop's (tests/test_serving_data.py) and a supermarket's, built from hand-made lakes by the pipeline's dbt
runner (receipts, zones from both sources, store behaviour, an experiment, shelf falls) plus a real
alert delivery log."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import polars as pl
import pytest
from PIL import Image
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.conftest import dashboard_page, published_workspace
from tests.test_dbt_behaviour_sales import DAIRY_HOURS, DAY1, DAY2, DAY3, fit
from tests.test_dbt_behaviour_sales import write_lake as write_behaviour_sales_lake
from tests.test_dbt_labour import write_staff_tracks
from tests.test_serving_data import END, START, ServingWorkspaces, serving_workspaces
from watershop_dagster import catalog, lake
from watershop_dagster.alerts.delivery import deliver
from watershop_dagster.alerts.model import KNOWN_PERSON, SOURCE_FRIGATE, Alert
from watershop_dagster.experiment.design import ExperimentSpec, assign, save_spec
from watershop_dagster.receipts.generate import (
    DEFAULT_ZONE_OF_CATEGORY,
    InjectedEffect,
    StoreProfile,
    generate_receipts,
)
from watershop_dagster.receipts.generate import ZONES as GENERATED_ZONES
from watershop_dagster.receipts.zones import ZoneMap
from watershop_dagster.serving import queries as q
from watershop_dagster.serving.marts import MartsReader

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RANGE = f"shop=north&dates={START}&dates={END}"

pytestmark = pytest.mark.slow
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> ServingWorkspaces:
    return serving_workspaces(tmp_path_factory)


@contextmanager
def served_dashboard(config, log: Path, *extra: str, env: dict | None = None) -> Iterator[str]:
    """`python -m watershop_dagster.serving.commands dashboard` (= `watershop dashboard`) on a free port,
    until it answers its health check; its base URL."""
    port = free_port()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "watershop_dagster.serving.commands", "dashboard", "--port", str(port),
             *extra, "--config", str(ServingWorkspaces.config_file(config))],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"dashboard did not start:\n{log.read_text()}"
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def dashboard(workspaces, tmp_path_factory):
    with served_dashboard(workspaces.full, tmp_path_factory.mktemp("dashboard") / "streamlit.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str, ready_text: str):
    """Load a dashboard page and wait until its script run has finished."""
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(url)
    page.get_by_text(ready_text, exact=True).first.wait_for(timeout=90_000)
    # Streamlit shows its status widget while the script runs; wait for the run to end and charts to draw
    deadline = time.monotonic() + 60
    while page.locator('[data-testid="stStatusWidget"]').count() and time.monotonic() < deadline:
        time.sleep(0.2)
    page.wait_for_timeout(1500)
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    return page


def metrics(page) -> dict[str, str]:
    found = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found


def number(text: str) -> float:
    return float(text.replace(",", ""))


def sql(config, query: str, params: list | None = None) -> tuple:
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        return db.execute(query, params or []).fetchone()


@needs_chromium
def test_overview_shows_the_marts_figures_for_the_date_range(dashboard, browser, workspaces, tmp_path):
    full = workspaces.full
    page = open_page(browser, f"{dashboard}/?{RANGE}", "Cans by size")
    shown = metrics(page)
    where = "shop_id = 'north' and date between ? and ?"
    visits, = sql(full, f"select sum(visits) from daily_visits where {where}", [START, END])
    unique, new = sql(full, f"""select count(distinct customer_id), count(distinct customer_id) filter (where n)
                                from (select customer_id, true n from new_customers where {where}
                                      union all select customer_id, false from returning_customers where {where})""",
                      [START, END, START, END])
    revenue, unpaid, transactions, cans = sql(
        full, f"select sum(revenue)::double, sum(unpaid_revenue)::double, sum(transactions), sum(cans) "
              f"from daily_revenue where {where}", [START, END])
    assert number(shown["Visits"]) == visits
    assert number(shown["Unique customers"]) == unique
    assert number(shown["New customers"]) == new
    assert number(shown["Returning customers"]) == unique - new
    assert number(shown["Revenue"]) == pytest.approx(revenue)
    assert number(shown["Unpaid"]) == pytest.approx(unpaid)
    assert number(shown["Transactions"]) == transactions
    assert number(shown["Cans sold"]) == cans
    first_in, last_out = sql(full, f"select left(min(first_entry::time)::varchar, 5), "
                                   f"left(max(last_exit::time)::varchar, 5) from first_last_customer where {where}",
                             [START, END])
    assert (shown["Earliest opening"], shown["Latest closing"]) == (first_in, last_out)

    body = page.inner_text("body")
    peaks, = sql(full, "select string_agg(lpad(hour::varchar, 2, '0') || ':00', ', ' order by hour) "
                       "from peak_hours where shop_id = 'north' and is_peak")
    assert re.search(r"Peak hours\s+" + re.escape(peaks), body)
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 5  # daily x2, hourly, modes, sizes
    page.screenshot(path=str(tmp_path / "overview.png"))
    print(f"screenshot: {tmp_path / 'overview.png'}")


@needs_chromium
def test_shop_and_single_day_filters(dashboard, browser, workspaces, tmp_path):
    full = workspaces.full
    page = open_page(browser, f"{dashboard}/?shop=south&dates=2025-03-01", "Cans by size")
    shown = metrics(page)
    visits, = sql(full, "select visits from daily_visits where shop_id = 'south' and date = '2025-03-01'")
    revenue, = sql(full, "select revenue::double from daily_revenue where shop_id = 'south' and date = '2025-03-01'")
    opened, closed = sql(full, "select strftime(first_entry, '%H:%M'), strftime(last_exit, '%H:%M') "
                               "from first_last_customer where shop_id = 'south' and date = '2025-03-01'")
    assert number(shown["Visits"]) == visits
    assert number(shown["Revenue"]) == pytest.approx(revenue)
    assert (shown["Opened (first customer in)"], shown["Closed (last customer out)"]) == (opened, closed)
    assert "south" in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "south_day.png"))


@needs_chromium
def test_unpaid_top_customers_and_customer_pages(dashboard, browser, workspaces, tmp_path):
    full = workspaces.full
    page = open_page(browser, f"{dashboard}/unpaid?{RANGE}", "Unpaid transactions in the date range")
    shown = metrics(page)
    count, owed = sql(full, "select count(*), sum(amount)::double from unpaid where shop_id = 'north' "
                            "and date between ? and ?", [START, END])
    defaulters, = sql(full, "select count(*) from repeat_defaulters where shop_id = 'north'")
    assert number(shown["Unpaid transactions"]) == count
    assert number(shown["Unpaid amount"]) == pytest.approx(owed)
    assert number(shown["Repeat defaulters"]) == defaulters
    page.screenshot(path=str(tmp_path / "unpaid.png"))

    page = open_page(browser, f"{dashboard}/top-customers?{RANGE}", "By spend")
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 2
    page.screenshot(path=str(tmp_path / "top_customers.png"))

    customer, visits = sql(full, "select customer_id, visits from customer_visit_counts where shop_id = 'north' "
                                 "order by visits desc, customer_id limit 1")
    spent, = sql(full, "select amount::double from total_spent where shop_id = 'north' and customer_id = ?", [customer])
    page = open_page(browser, f"{dashboard}/customer?{RANGE}&customer={customer}", "Purchases")
    shown = metrics(page)
    assert number(shown["Visits (all time)"]) == visits
    assert number(shown["Spent (all time)"]) == pytest.approx(spent)
    page.screenshot(path=str(tmp_path / "customer.png"))


def test_pos_only_workspace_says_visit_marts_are_missing(workspaces, monkeypatch):
    """Without a browser: Streamlit's AppTest runs the same script against a workspace with no visit marts."""
    from streamlit import config as st_config
    from streamlit.testing.v1 import AppTest

    from watershop_dagster.serving.commands import DASHBOARD_SCRIPT

    monkeypatch.setenv("WATERSHOP_CONFIG", str(ServingWorkspaces.config_file(workspaces.pos_only)))
    app = AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=120)
    app.query_params["shop"] = "north"
    app.query_params["dates"] = [START, END]
    previous = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")  # as `watershop dashboard` binds it: no sign-in
    try:
        app.run()
    finally:
        st_config.set_option("server.address", previous)
    assert not app.exception
    assert any("no visit marts" in info.value for info in app.info)
    shown = {m.label: m.value for m in app.metric}
    assert "Visits" not in shown
    revenue, = sql(workspaces.pos_only, "select sum(revenue)::double from daily_revenue where shop_id = 'north' "
                                        "and date between ? and ?", [START, END])
    assert number(shown["Revenue"]) == pytest.approx(revenue)


@pytest.fixture(scope="module")
def exposed_dashboard(workspaces, tmp_path_factory):
    """`watershop dashboard --host 0.0.0.0` (every interface) with an API key: sessions must sign in."""
    log = tmp_path_factory.mktemp("exposed") / "streamlit.log"
    with served_dashboard(workspaces.full, log, "--host", "0.0.0.0", env={"WATERSHOP_API_KEY": EXPOSED_KEY}) as base:
        assert "every session must sign in" in log.read_text()
        yield base


EXPOSED_KEY = "exposed-key-91c2"


@needs_chromium
def test_dashboard_beyond_loopback_shows_nothing_before_sign_in(exposed_dashboard, browser, workspaces, tmp_path):
    page = open_page(browser, f"{exposed_dashboard}/?{RANGE}", "Watershop sign-in")
    assert page.locator('[data-testid="stMetric"]').count() == 0
    assert "Revenue" not in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "sign_in.png"))

    page.get_by_label("API key").fill("guess")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong API key.").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stMetric"]').count() == 0

    page.get_by_label("API key").fill(EXPOSED_KEY)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Cans by size", exact=True).first.wait_for(timeout=90_000)
    revenue, = sql(workspaces.full, "select sum(revenue)::double from daily_revenue where shop_id = 'north' "
                                    "and date between ? and ?", [START, END])
    deadline = time.monotonic() + 60
    while "Revenue" not in metrics(page) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert number(metrics(page)["Revenue"]) == pytest.approx(revenue)
    page.screenshot(path=str(tmp_path / "signed_in.png"))

    fresh = open_page(browser, f"{exposed_dashboard}/unpaid?{RANGE}", "Watershop sign-in")  # a new session
    assert fresh.locator('[data-testid="stMetric"]').count() == 0


# --- supermarket pages, in-process (AppTest) on real served marts -----------------------------------

MARKET = "market"  # tests/test_dbt_behaviour_sales.py's shop: zones, footfall and receipts over three days
SUPER = "super"    # a generated store with an assigned and analysed experiment
EXPERIMENT = ExperimentSpec(name="endcaps", zones=list(GENERATED_ZONES), pre_start=date(2026, 1, 5),
                            start=date(2026, 1, 19), end=date(2026, 2, 1), seed=3)
SUPERMARKET_YAML = f"""\
partitions_start: "2025-01-01"
shops:
  - id: {MARKET}
    timezone: UTC
    cameras: [door, floor]
  - id: {SUPER}
    timezone: UTC
"""
STILL_EVENT, BARE_EVENT = "fall-dairy-1", "fall-dairy-2"


def _supermarket_lake(config) -> None:
    """market's behaviour and receipts (its floor camera fed by Frigate), super's experiment, two shelf falls."""
    lake_root = config.lake_root
    write_behaviour_sales_lake(lake_root)
    write_staff_tracks(lake_root)
    for day in (DAY1, DAY2, DAY3):
        for dataset in (catalog.PERSON_TRACKS, catalog.ZONE_VISITS):
            rows = lake.read_dataset(lake_root, dataset, shop_id=MARKET, date=day, camera="floor")
            lake.write_dataset(rows.with_columns(source=pl.lit(catalog.SOURCE_FRIGATE)), lake_root, dataset,
                               shop_id=MARKET, date=day, camera="floor")

    save_spec(config.workspace_dir, EXPERIMENT, today=date(2026, 1, 1))
    schedule = assign(config.workspace_dir, EXPERIMENT.name, today=date(2026, 1, 1))
    lines = generate_receipts(EXPERIMENT.pre_start, EXPERIMENT.end, seed=5, profile=StoreProfile(receipts_per_day=60),
                              effect=InjectedEffect.from_assignment(schedule, 0.10)).frame()
    lines = lines.with_columns(pl.lit("generated.csv").alias("source_file"),
                               pl.int_range(pl.len(), dtype=pl.Int32).alias("source_line"))
    for (day,), part in lines.group_by(pl.col("timestamp").dt.date()):
        lake.write_dataset(part, lake_root, catalog.RECEIPTS, shop_id=SUPER, date=day)
    lake.write_dataset(ZoneMap.constant(DEFAULT_ZONE_OF_CATEGORY).table, lake_root, catalog.CATEGORY_ZONES,
                       shop_id=SUPER)

    keys = {"shop_id": MARKET, "date": DAY1.isoformat(), "camera": "floor"}
    still = lake.partition_dir(lake_root, catalog.FALLING_OBJECT_STILLS.name, **keys) / f"{STILL_EVENT}.jpg"
    still.parent.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 40, 40)).save(still, format="JPEG")
    t0 = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
    falls = [(STILL_EVENT, t0, 140.0, True, str(still.relative_to(lake_root))),
             (BARE_EVENT, t0 + timedelta(hours=2), 90.0, False, None)]
    lake.write_dataset(pl.DataFrame(
        [{"event_id": e, "zone": "dairy", "release_utc": at, "landing_utc": at + timedelta(seconds=0.5),
          "drop_height_px": h, "blob_area_px": 80.0, "confidence": 0.9, "landed": landed, "x_px": 10.0, "y_px": 40.0,
          "source_path": "floor/2025-06-02/09-00-00.mp4", "still": s} for e, at, h, landed, s in falls],
        schema=catalog.FALLING_OBJECT_EVENTS.schema), lake_root, catalog.FALLING_OBJECT_EVENTS, **keys)


@pytest.fixture(scope="module")
def supermarket(tmp_path_factory):
    return published_workspace(tmp_path_factory.mktemp("supermarket"), SUPERMARKET_YAML, _supermarket_lake)


def shown_metrics(app) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def texts(app) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "info", "warning") for e in getattr(app, kind))


def test_receipts_page(supermarket):
    app = dashboard_page(supermarket, "receipts", MARKET, DAY1, DAY3)
    receipts, sales, units = sql(supermarket, "select sum(receipts), sum(sales)::double, sum(units)::double "
                                              "from fct_store_day where shop_id = ?", [MARKET])
    assert (receipts, sales) == (5, pytest.approx(24.60))  # R1-R3 on the first day, R4-R5 on the second
    shown = shown_metrics(app)
    assert number(shown["Receipts"]) == receipts
    assert number(shown["Net sales"]) == pytest.approx(sales)
    assert shown["Average transaction value"] == f"{sales / receipts:,.2f}"
    assert shown["Units per transaction"] == f"{units / receipts:,.2f}"
    listed = app.dataframe[-1].value
    assert sorted(listed["receipt_id"]) == ["R1", "R2", "R3", "R4", "R5"]
    assert listed.set_index("receipt_id").loc["R1", "total"] == pytest.approx(3.0 + 2.0 + 2.25)

    app.selectbox(key="receipt").select(f"{DAY1} · R1").run()
    assert not app.exception
    lines = app.dataframe[-1].value
    assert list(lines["category"]) == ["dairy", "snacks", "bakery"]
    assert list(lines["zone"]) == ["dairy", "promo", "bakery"]

    later = dashboard_page(supermarket, "receipts", MARKET, "2025-07-01")
    assert "No receipts in this date range." in texts(later) and not later.metric


def test_store_conversion_page(supermarket):
    app = dashboard_page(supermarket, "store_behaviour", MARKET, DAY1, DAY3)
    shown = shown_metrics(app)
    # entries 4 + 4 + 1 (staff not counted), receipts 3 + 2, zone visitors 3 + 3, sales 12.60 + 12.00, units 8 + 7
    assert (shown["Store visitors"], shown["Receipts"], shown["Zone visitors"]) == ("9", "5", "6")
    assert shown["Conversion"] == f"{5 / 9:.1%}"
    assert shown["Shopper yield"] == f"{24.60 / 9:,.2f}"
    assert shown["Zone entry rate"] == f"{6 / 9:.1%}"
    assert (shown["Average transaction value"], shown["Units per transaction"]) == (f"{24.60 / 5:,.2f}", "3.00")
    days = app.dataframe[0].value
    assert list(days["conversion_rate"]) == [0.75, 0.5, 0.0]
    one_day = shown_metrics(dashboard_page(supermarket, "store_behaviour", MARKET, DAY2))
    assert (one_day["Conversion"], one_day["Shopper yield"]) == ("50.0%", "3.00")
    # staff seen on camera (tests/test_dbt_labour.py): 3.8 labour hours in hours 8-12 and 23; sales in
    # those hours of day 7.25 + 15.00 + 1.50 (16:00's 0.85 had nobody on the floor); visitors 9
    assert (shown["Labour hours"], shown["Sales per labour hour"]) == ("3.80", f"{23.75 / 3.8:,.2f}")
    assert shown["Visitors per labour hour"] == f"{9 / 3.8:,.2f}"
    no_staff = dashboard_page(supermarket, "store_behaviour", MARKET, DAY3)
    assert "No staff member was seen" in texts(no_staff) and "Labour hours" not in shown_metrics(no_staff)


def test_zone_sales_page_shows_the_correlation_with_its_interval(supermarket):
    app = dashboard_page(supermarket, "zone_sales", MARKET, DAY1, DAY3)
    zones = app.dataframe[0].value.set_index("zone")
    visitors, sales = sql(supermarket, "select sum(visitors), sum(sales)::double from fct_zone_hour "
                                       "where shop_id = ? and zone = 'dairy'", [MARKET])
    assert (zones.loc["dairy", "visitors"], zones.loc["dairy", "sales"]) == (visitors, pytest.approx(sales))
    fits = app.dataframe[1].value.set_index("zone")
    _, _, _, r, low, high, _ = fit(DAIRY_HOURS)
    assert fits.loc["dairy", "r"] == pytest.approx(r, abs=5e-4)
    assert fits.loc["dairy", "95 % CI"] == f"[{round(low, 3)}, {round(high, 3)}]"
    assert fits.loc["promo", "status"] == "too_few_observations" and "at least 2" in fits.loc["promo", "reason"]
    assert len(app.get("vega_lite_chart")) == 1  # dairy's interval: the only zone with one

    app.segmented_control(key="correlation_grain").set_value("day").run()
    assert not app.exception
    fits = app.dataframe[1].value.set_index("zone")
    assert fits.loc["dairy", "status"] == "no_variation" and pd.isna(fits.loc["dairy", "95 % CI"])


def test_experiments_page_shows_the_effect_its_interval_and_the_calendar(supermarket):
    app = dashboard_page(supermarket, "experiments", SUPER, DAY1)
    effect, low, high, p, mde = sql(supermarket, "select effect, ci_low, ci_high, p_value, mde from experiment_results "
                                                 "where experiment = ? and shop_id = ?", [EXPERIMENT.name, SUPER])
    assert effect is not None, "the experiment was not analysed"
    shown = shown_metrics(app)
    assert shown["Lift"] == f"{effect:+.1%}"
    assert shown["95 % CI"] == f"{low:+.1%} to {high:+.1%}"
    assert shown["p-value (RI)"] == f"{p:,.3f}"
    assert shown["MDE"] == f"{mde:.1%}"
    treated, control = sql(supermarket, "select count(*) filter (where arm = 'treatment'), "
                                        "count(*) filter (where arm = 'control') from experiment_assignment "
                                        "where experiment = ? and not washout", [EXPERIMENT.name])
    assert f"control: {control} zone-days · treatment: {treated} zone-days" in texts(app)
    assert treated + control == len(GENERATED_ZONES) * 14
    assert len(app.get("vega_lite_chart")) == 1  # the calendar


def test_shelf_incidents_page_lists_falls_and_shows_a_stored_still(supermarket):
    app = dashboard_page(supermarket, "shelf_incidents", MARKET, DAY1, DAY3)
    shown = shown_metrics(app)
    assert (shown["Falls"], shown["Fell out of the zone"], shown["Shelf zones with a fall"]) == ("2", "1", "1")
    daily = app.dataframe[0].value
    assert daily[["date", "camera", "zone", "falls"]].values.tolist() == [[DAY1.isoformat(), "floor", "dairy", 2]]
    falls = app.dataframe[1].value
    assert list(falls["event_id"]) == [BARE_EVENT, STILL_EVENT]  # newest first
    assert list(falls["fell at"]) == ["2025-06-02 11:30:00", "2025-06-02 09:30:00"]  # the shop's time (UTC here)

    app.selectbox(key="fall").select(STILL_EVENT).run()
    assert not app.exception and len(app.image) == 1
    assert "floor · dairy · 09:30:00" in app.image[0].captions[0]
    app.selectbox(key="fall").select(BARE_EVENT).run()
    assert not app.image and "No still stored" in texts(app)


def _deliver(config, rule: str, person: str | None, at: datetime) -> None:
    """One alert through the alert layer: the webhook succeeds, the mail server refuses."""
    received = []

    def refuse(alert: Alert) -> None:
        raise ConnectionRefusedError("mail server down")

    alert = Alert(alert_id=f"a-{rule}-{at:%H%M%S}", source=SOURCE_FRIGATE, rule=rule, kind=KNOWN_PERSON,
                  shop_id=MARKET, camera="door", event_id="ev1", subject=person or "ev1", ts=at.timestamp(),
                  triggered_at=at.timestamp() + 0.4, zone="entrance", person_key=person, role="vip",
                  channels=("webhook", "email"))
    deliver(config, MARKET, [alert], {"webhook": received.append, "email": refuse})
    assert len(received) == 1


def _alert_log(config) -> Path:
    return lake.partition_dir(config.lake_root, catalog.ALERT_DELIVERIES.name, shop_id=MARKET)


def test_live_alerts_page_lists_todays_alerts_with_their_delivery(supermarket):
    try:
        app = dashboard_page(supermarket, "live_alerts", MARKET, DAY1)
        assert "No alerts today." in texts(app)
        now = datetime.now(UTC).replace(microsecond=0)
        _deliver(supermarket, "vip_in", "vip/ravi", now - timedelta(minutes=5))
        _deliver(supermarket, "vip_in", "vip/ravi", now - timedelta(days=2))  # not today's
        app.run()
        assert not app.exception
        shown = shown_metrics(app)
        assert (shown["Alerts today"], shown["Failed deliveries"]) == ("1", "1")
        alerts = app.dataframe[0].value
        assert alerts[["rule", "person", "camera", "channel", "status"]].values.tolist() == [
            ["vip_in", "vip/ravi", "door", "email", "failed"], ["vip_in", "vip/ravi", "door", "webhook", "delivered"]]
        assert alerts["time"].iloc[0] == f"{now - timedelta(minutes=5):%Y-%m-%d %H:%M:%S}"

        _deliver(supermarket, "blocked_in", "blocked/x", now)
        frame = q.recent_alerts_frame(supermarket, 10)
        assert {"time", "shop", "camera", "rule", "person", "role", "zone", "channel", "status"} <= set(frame.columns)
        assert frame["rule"].to_list() == ["blocked_in", "blocked_in", "vip_in", "vip_in"]  # newest first
        assert q.recent_alerts_frame(supermarket, 1)["rule"].to_list() == ["blocked_in"]
        app.run()
        assert shown_metrics(app)["Alerts today"] == "2"
        assert dashboard_page(supermarket, "live_alerts", SUPER, DAY1).dataframe.len == 0  # another shop's
    finally:
        shutil.rmtree(_alert_log(supermarket), ignore_errors=True)


def _script_run(stream, state: ClientState) -> tuple[dict[str, str], list[str], ForwardMsg | None, str]:
    """Ask the server for one (page or fragment) run as the browser does; (metrics, texts and titles, the
    auto-rerun request, the page's hash) from the messages until the run finishes."""
    stream.send(BackMsg(rerun_script=state).SerializeToString())
    shown, said, auto, page_hash = {}, [], None, ""
    while True:
        msg = ForwardMsg.FromString(stream.recv(timeout=120))
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            page_hash = msg.new_session.page_script_hash
        elif kind == "auto_rerun":
            auto = msg
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            if element.WhichOneof("type") == "metric":
                shown[element.metric.label] = element.metric.body
            elif element.WhichOneof("type") in ("markdown", "heading"):
                said.append(getattr(element, element.WhichOneof("type")).body)
        elif kind == "script_finished":
            return shown, said, auto, page_hash


def test_live_alerts_refresh_themselves_in_a_served_dashboard(supermarket, tmp_path):
    """Over Streamlit's own websocket, as the browser talks to `watershop dashboard`: the page asks to
    rerun its alert list every few seconds, and that rerun alone shows an alert delivered meanwhile."""
    from websockets.sync.client import connect

    from watershop_dagster.serving.dashboard_pages import ALERTS_REFRESH_SECONDS

    query = f"shop={MARKET}"
    try:
        with (served_dashboard(supermarket, tmp_path / "streamlit.log") as base,
              connect(base.replace("http", "ws") + "/_stcore/stream", subprotocols=["streamlit"]) as stream):
            shown, said, auto, page_hash = _script_run(stream, ClientState(query_string=query, page_name="live-alerts"))
            assert "Live alerts" in said and "No alerts today." in said and not shown
            assert auto is not None and auto.auto_rerun.interval == ALERTS_REFRESH_SECONDS

            _deliver(supermarket, "vip_in", "vip/ravi", datetime.now(UTC))
            shown, said, _, _ = _script_run(stream, ClientState(
                query_string=query, page_name="live-alerts", page_script_hash=page_hash,
                fragment_id=auto.auto_rerun.fragment_id, is_auto_rerun=True))
            assert (shown["Alerts today"], shown["Failed deliveries"]) == ("1", "1")
            assert not any("Live alerts" in text for text in said)  # the fragment alone reran, not the page
    finally:
        shutil.rmtree(_alert_log(supermarket), ignore_errors=True)


def test_zones_page_shows_each_rows_source_and_filters_by_it(supermarket):
    app = dashboard_page(supermarket, "zones", MARKET, DAY1, DAY2)
    source = app.multiselect(key="zone_source")
    assert source.options == ["frigate", "watershop"] and source.value == ["frigate", "watershop"]
    dwell = app.dataframe[0].value
    assert sorted(zip(dwell["zone"], dwell["source"])) == [
        ("bakery", "frigate"), ("dairy", "frigate"), ("entrance", "watershop"), ("promo", "watershop")]

    source.unselect("frigate").run()
    assert not app.exception
    dwell = app.dataframe[0].value
    assert sorted(dwell["zone"]) == ["entrance", "promo"] and set(dwell["source"]) == {"watershop"}
    assert "not split by source" in texts(app)
    app.multiselect(key="zone_source").unselect("watershop").run()
    assert "Pick at least one source." in texts(app) and "No zone visits in this date range." in texts(app)


SUPERMARKET_PAGES = ("receipts", "store_behaviour", "zone_sales", "experiments", "shelf_incidents", "live_alerts")


def test_a_water_shop_gets_plain_words_not_supermarket_pages(workspaces):
    """The water shop's served file: receipt, experiment and shelf marts empty, behaviour marts missing."""
    for page in SUPERMARKET_PAGES:
        app = dashboard_page(workspaces.full, page, "north", START, END)
        said = texts(app)
        assert not app.metric and not app.dataframe, page
        assert any(words in said for words in ("has no", "No experiment", "No alerts today")), (page, said)
    from watershop_dagster.serving.dashboard import _supermarket_marts

    assert _supermarket_marts(MartsReader(workspaces.full.marts_db)) == set()


def test_supermarket_pages_are_offered_once_their_marts_have_rows(supermarket, tmp_path):
    from watershop_dagster.serving.dashboard import _supermarket_marts

    assert _supermarket_marts(MartsReader(supermarket.marts_db)) == set(q.SUPERMARKET_MARTS)
    assert _supermarket_marts(MartsReader(tmp_path / "never_built.duckdb")) == set()
    with MartsReader(supermarket.marts_db).connect() as con:
        # super has receipts but no cameras: the behaviour marts hold its sales beside zero visitors
        assert q.marts_with_rows(con, q.SUPERMARKET_MARTS, SUPER) == set(q.SUPERMARKET_MARTS) - {"falling_object_events"}
        assert q.marts_with_rows(con, q.SUPERMARKET_MARTS, "elsewhere") == {"experiment_results"}  # every shop's


def test_a_still_is_shown_only_from_inside_the_lake(supermarket):
    from watershop_dagster.serving.dashboard_pages import View, _still_file

    view = View(config=supermarket, reader=MartsReader(supermarket.marts_db), flt=q.Filter(MARKET))
    stored = sql(supermarket, "select still from falling_object_events where event_id = ?", [STILL_EVENT])[0]
    assert _still_file(view, stored) == (supermarket.lake_root / stored).resolve()
    outside = supermarket.workspace_dir / "elsewhere.jpg"
    outside.write_bytes((supermarket.lake_root / stored).read_bytes())
    for still in (None, "", "falling_object_stills/gone.jpg", "../elsewhere.jpg", str(outside)):
        assert _still_file(view, still) is None, still
