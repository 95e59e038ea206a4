"""The HTTP API over real HTTP: `watershop api` in a subprocess, plus an in-process uvicorn server for a
POS-only workspace; every figure is checked against SQL on the same marts file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
import uvicorn

from tests.test_serving_data import END, START, ServingWorkspaces, serving_workspaces, workspace_from
from watershop_dagster import warehouse
from watershop_dagster.serving import builds
from watershop_dagster.serving.api import MissingApiKey, create_app
from watershop_dagster.serving.settings import API_KEY_ENV_VAR

pytestmark = pytest.mark.slow

KEY = "test-key-7f3a"
AUTH = {"X-API-Key": KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> ServingWorkspaces:
    return serving_workspaces(tmp_path_factory)


@pytest.fixture(scope="module")
def api_config(workspaces, tmp_path_factory):
    """A workspace of its own (a copy of the `full` marts): the refresh test replaces its file."""
    return workspace_from(workspaces.full.marts_db, tmp_path_factory.mktemp("api_ws"), workspaces.pipeline)


@pytest.fixture(scope="module")
def api(api_config):
    """`python -m watershop_dagster.serving.commands api` (the `watershop api` command), key from the env."""
    port = free_port()
    env = {**os.environ, API_KEY_ENV_VAR: KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "watershop_dagster.serving.commands", "api", "--port", str(port),
         "--config", str(ServingWorkspaces.config_file(api_config)), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", process)
        with httpx.Client(base_url=base, timeout=30) as client:
            client.server_pid = process.pid  # type: ignore[attr-defined]
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def pos_api(workspaces):
    """create_app with an explicit key (no env), served by uvicorn in a thread, over a POS-only workspace."""
    with served(create_app(workspaces.pos_only, api_key=KEY)) as client:
        yield client


@contextmanager
def served(app) -> Iterator[httpx.Client]:
    """The app served by uvicorn in a thread, and a client of it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
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


def sql(config, query: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        return db.execute(query, params or []).fetchall()


def all_pages(client: httpx.Client, path: str, params: dict, limit: int) -> tuple[int, list[dict]]:
    items, offset, total = [], 0, None
    while True:
        page = client.get(path, params={**params, "limit": limit, "offset": offset}, headers=AUTH)
        assert page.status_code == 200, page.text
        body = page.json()
        assert (body["limit"], body["offset"]) == (limit, offset)
        total = body["total"] if total is None else total
        assert body["total"] == total
        items += body["items"]
        offset += limit
        if offset >= total:
            return total, items


# --- auth and schema ----------------------------------------------------------------------------

def test_openapi_declares_the_api_key_and_every_v1_route_needs_it(api):
    schema = api.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= next(iter(schemes.values())).items()
    scheme_name = next(iter(schemes))
    v1 = {path: ops for path, ops in schema["paths"].items() if path.startswith("/v1/")}
    assert {"/v1/daily-visits", "/v1/daily-revenue", "/v1/customers", "/v1/customers/{customer_id}",
            "/v1/customers/{customer_id}/visits", "/v1/payments", "/v1/defaulters"} <= set(v1)
    for path, ops in v1.items():
        assert ops["get"]["security"] == [{scheme_name: []}], path
    params = {p["name"] for p in schema["paths"]["/v1/daily-visits"]["get"]["parameters"]}
    assert {"shop_id", "start", "end", "limit", "offset"} <= params


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}], ids=["missing", "wrong", "empty"])
def test_missing_or_wrong_key_is_401(api, headers):
    for path in ("/v1/daily-visits", "/v1/customers/C0001", "/v1/payments", "/v1/defaulters", "/v1/shops"):
        response = api.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert "API key" in response.json()["detail"]
    assert api.get("/health").status_code == 200  # liveness needs no key


def test_create_app_refuses_to_start_without_a_key(workspaces, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV_VAR, raising=False)
    with pytest.raises(MissingApiKey, match=API_KEY_ENV_VAR):
        create_app(workspaces.full)


# --- figures ------------------------------------------------------------------------------------

def test_daily_visits_with_date_filter_and_pagination_match_the_marts(api, api_config):
    want = sql(api_config, "select shop_id, date::varchar, visits, unique_customers, new_customers, "
                           "returning_customers from daily_visits where shop_id = 'north' "
                           "and date between ? and ? order by date", [START, END])
    total, items = all_pages(api, "/v1/daily-visits", {"shop_id": "north", "start": str(START), "end": str(END)}, 1)
    assert total == len(want) == 2
    got = [(i["shop_id"], i["date"], i["visits"], i["unique_customers"], i["new_customers"], i["returning_customers"])
           for i in items]
    assert got == want
    everything = api.get("/v1/daily-visits", headers=AUTH).json()
    assert everything["total"] == sql(api_config, "select count(*) from daily_visits")[0][0]
    (visits,), = sql(api_config, "select sum(visits) from daily_visits")
    assert sum(i["visits"] for i in everything["items"]) == visits


def test_daily_revenue_matches_the_marts(api, api_config):
    body = api.get("/v1/daily-revenue", params={"start": str(END), "end": str(END)}, headers=AUTH).json()
    (count, revenue, unpaid), = sql(api_config, "select count(*), sum(revenue)::double, sum(unpaid_revenue)::double "
                                                "from daily_revenue where date = ?", [END])
    assert body["total"] == count
    assert sum(i["revenue"] for i in body["items"]) == pytest.approx(revenue)
    assert sum(i["unpaid_revenue"] for i in body["items"]) == pytest.approx(unpaid)


def test_customers_and_one_customers_visits(api, api_config):
    (n_customers,), = sql(api_config, """select count(*) from (select shop_id, customer_id from customer_visit_counts
                                          union select shop_id, customer_id from total_spent)""")
    total, customers = all_pages(api, "/v1/customers", {"sort": "visits"}, 50)
    assert total == len(customers) == n_customers
    assert [c["visits"] for c in customers] == sorted((c["visits"] for c in customers), reverse=True)

    (shop, top, visits), = sql(api_config, "select shop_id, customer_id, visits from customer_visit_counts "
                                           "order by visits desc, customer_id limit 1")
    detail = api.get(f"/v1/customers/{top}", params={"shop_id": shop}, headers=AUTH)
    assert detail.status_code == 200
    (row,) = detail.json()["shops"]
    (spent,), = sql(api_config, "select amount::double from total_spent where shop_id = ? and customer_id = ?",
                    [shop, top])
    assert (row["visits"], row["amount"]) == (visits, pytest.approx(spent))

    want = sql(api_config, "select visit_id from visit_log where shop_id = ? and customer_id = ? "
                           "order by entry_time, visit_id", [shop, top])
    total, got = all_pages(api, f"/v1/customers/{top}/visits", {"shop_id": shop}, 2)
    assert total == visits == len(want)
    assert [v["visit_id"] for v in got] == [v for (v,) in want]
    day = api.get(f"/v1/customers/{top}/visits", params={"shop_id": shop, "start": str(END), "end": str(END)},
                  headers=AUTH).json()
    assert day["total"] == sql(api_config, "select count(*) from visit_log where shop_id = ? and customer_id = ? "
                                           "and date = ?", [shop, top, END])[0][0]


def test_payments_and_defaulters_match_the_marts(api, api_config):
    total, unpaid = all_pages(api, "/v1/payments", {"shop_id": "north", "status": "Unpaid"}, 1000)
    (count, owed), = sql(api_config, "select count(*), sum(amount)::double from unpaid where shop_id = 'north'")
    assert total == count and sum(p["amount"] for p in unpaid) == pytest.approx(owed)
    assert all(p["payment_status"] == "Unpaid" for p in unpaid)
    first_page = api.get("/v1/payments", params={"limit": 5}, headers=AUTH).json()
    assert first_page["total"] == sql(api_config, "select count(*) from transactions")[0][0]
    assert len(first_page["items"]) == 5
    stamps = [p["timestamp_local"] for p in first_page["items"]]
    assert stamps == sorted(stamps, reverse=True)

    modes = {m["payment_mode"]: m for m in api.get("/v1/payments/summary", headers=AUTH).json()}
    for mode, amount in sql(api_config, "select payment_mode, sum(amount)::double from payment_summary group by 1"):
        assert modes[mode]["amount"] == pytest.approx(amount)

    defaulters = api.get("/v1/defaulters", headers=AUTH).json()
    want = sql(api_config, "select shop_id, customer_id, unpaid_count from repeat_defaulters "
                           "order by amount_owed desc, customer_id, shop_id")
    assert defaulters["total"] == len(want)
    assert [(d["shop_id"], d["customer_id"], d["unpaid_count"]) for d in defaulters["items"]] == want


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "params", "status"), [
    ("/v1/daily-visits", {"start": "2025-02-30"}, 422),
    ("/v1/daily-visits", {"end": "yesterday"}, 422),
    ("/v1/daily-visits", {"start": "2025-03-02", "end": "2025-03-01"}, 422),
    ("/v1/payments", {"limit": 0}, 422),
    ("/v1/payments", {"limit": 100000}, 422),
    ("/v1/payments", {"offset": -1}, 422),
    ("/v1/payments", {"status": "Maybe"}, 422),
    ("/v1/customers", {"sort": "height"}, 422),
    ("/v1/customers/NO-SUCH-CUSTOMER", {}, 404),
    ("/v1/customers/NO-SUCH-CUSTOMER/visits", {}, 404),
    ("/v1/daily-revenue", {"shop_id": "atlantis"}, 404),
])
def test_validation(api, path, params, status):
    response = api.get(path, params=params, headers=AUTH)
    assert response.status_code == status, response.text


def test_pos_only_workspace_says_the_visit_marts_are_missing(pos_api, workspaces):
    for path in ("/v1/daily-visits", "/v1/customers/C0001/visits"):
        response = pos_api.get(path, headers=AUTH)
        assert response.status_code == 404
        body = response.json()
        assert "no visit marts" in body["detail"] and body["missing_marts"]
    revenue = pos_api.get("/v1/daily-revenue", headers=AUTH)
    (days,), = sql(workspaces.pos_only, "select count(*) from daily_revenue")
    assert revenue.status_code == 200 and revenue.json()["total"] == days
    customers = pos_api.get("/v1/customers", params={"sort": "amount", "limit": 3}, headers=AUTH).json()
    assert customers["items"] and all(c["visits"] is None for c in customers["items"])
    assert pos_api.get("/v1/shops", headers=AUTH).json()[0]["has_visit_marts"] is False
    assert pos_api.get("/health").json()["visit_marts"] is False


# --- refresh (keep last: it publishes new builds into this module's workspace) ------------------------------------

def publish_marts_of(config, marts_file: Path, extra_day: bool) -> None:
    """A real publish of `marts_file`'s marts (plus, if asked, a copy of the last day of daily_visits
    one day later), as if dbt had built them into the workspace's build file."""
    config.build_db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(config.build_db)) as db:
        db.execute("ATTACH ? AS source (READ_ONLY)", [str(marts_file)])
        names = db.execute("select table_name from information_schema.tables "
                           "where table_catalog = 'source' and table_schema = 'main'").fetchall()
        for (name,) in names:
            db.execute(f'create or replace table main."{name}" as select * from source.main."{name}"')
        if extra_day:
            db.execute("insert into daily_visits by name select * replace (date + 1 as date) from daily_visits "
                       "where date = (select max(date) from daily_visits)")
        db.execute("DETACH source")
    with warehouse.build_lock(config):
        warehouse.publish_marts(config)


def test_server_follows_each_build_the_pipeline_publishes(api, api_config, tmp_path):
    before = api.get("/v1/daily-visits", headers=AUTH).json()["total"]
    (added,), = sql(api_config, "select count(*) from daily_visits where date = (select max(date) from daily_visits)")
    original = tmp_path / "original.duckdb"
    shutil.copyfile(api_config.marts_db, original)
    publish_marts_of(api_config, original, extra_day=True)
    after = api.get("/v1/daily-visits", headers=AUTH).json()
    assert after["total"] == before + added
    assert str(END + timedelta(days=1)) in {i["date"] for i in after["items"]}
    publish_marts_of(api_config, original, extra_day=False)  # the next build drops that day again
    assert api.get("/v1/daily-visits", headers=AUTH).json()["total"] == before
    proc_fds = Path(f"/proc/{api.server_pid}/fd")
    if proc_fds.is_dir():
        targets = []
        for fd in proc_fds.iterdir():
            try:
                targets.append(os.readlink(fd))
            except OSError:  # closed meanwhile
                pass
        assert not [t for t in targets if "(deleted)" in t], "the server holds a deleted file open"
        earlier = builds.builds_dir(api_config.warehouse_dir)
        open_builds = {Path(t).parent.name for t in targets if t.startswith(str(earlier))}
        assert open_builds <= {builds.current_build(api_config.warehouse_dir).build_id}, open_builds


def test_a_merged_customer_id_is_answered_with_the_id_it_merged_into(workspaces, tmp_path):
    """A bookmarked id that a later registry build merged into an older one (customer_merges) still
    answers: with the surviving customer, who lists it among their earlier ids."""
    (shop, survivor, visits), = sql(workspaces.full, "select shop_id, customer_id, visits from customer_visit_counts "
                                                     "order by visits desc, customer_id limit 1")
    marts = tmp_path / "marts.duckdb"
    with duckdb.connect(str(marts)) as db:
        db.execute(f"attach '{workspaces.full.marts_db}' as served (read_only)")
        for (name,) in db.execute("select table_name from information_schema.tables where table_catalog = 'served' "
                                  "and table_schema = 'main'").fetchall():
            db.execute(f'create table "{name}" as select * from served."{name}"')
        db.execute("delete from customer_merges")
        db.execute("insert into customer_merges (shop_id, customer_id, surviving_id, merged_into) "
                   "values (?, 'c_merged', ?, ?)", [shop, survivor, survivor])
    config = workspace_from(marts, tmp_path / "ws", workspaces.pipeline)
    with served(create_app(config, api_key=KEY)) as client:
        detail = client.get("/v1/customers/c_merged", params={"shop_id": shop}, headers=AUTH)
        assert detail.status_code == 200, detail.text
        assert (detail.json()["customer_id"], detail.json()["merged_ids"]) == (survivor, ["c_merged"])
        assert detail.json()["shops"][0]["visits"] == visits
        assert client.get(f"/v1/customers/{survivor}", headers=AUTH).json()["merged_ids"] == ["c_merged"]
        assert client.get("/v1/customers/c_merged/visits", params={"shop_id": shop}, headers=AUTH).json()["total"] == visits
        assert client.get("/v1/customers/c_never_seen", headers=AUTH).status_code == 404
