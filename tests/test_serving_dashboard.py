"""The Streamlit dashboard: `watershop dashboard` in a subprocess, loaded in headless Chromium (Playwright);
the numbers on the pages are checked against SQL on the same marts file, and screenshots are saved."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.test_serving_data import END, START, ServingWorkspaces, serving_workspaces

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RANGE = f"shop=north&dates={START}&dates={END}"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> ServingWorkspaces:
    return serving_workspaces(tmp_path_factory)


@pytest.fixture(scope="module")
def dashboard(workspaces, tmp_path_factory):
    """`python -m watershop_dagster.serving.commands dashboard` (= `watershop dashboard`) on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("dashboard") / "streamlit.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "watershop_dagster.serving.commands", "dashboard", "--port", str(port),
             "--config", str(ServingWorkspaces.config_file(workspaces.full))],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
    port = free_port()
    log = tmp_path_factory.mktemp("exposed") / "streamlit.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "watershop_dagster.serving.commands", "dashboard", "--port", str(port),
             "--host", "0.0.0.0", "--config", str(ServingWorkspaces.config_file(workspaces.full))],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "WATERSHOP_API_KEY": EXPOSED_KEY},
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
        assert "every session must sign in" in log.read_text()
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


EXPOSED_KEY = "exposed-key-91c2"


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
