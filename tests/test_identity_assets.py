"""Registry, visits, links, alerts and erasure through Dagster on two days of synthetic footage."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from watershop_dagster import lake
from watershop_dagster.cli import main
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.orchestration.instance import workspace_instance
from watershop_dagster.orchestration.runner import run_range
from watershop_dagster.pos.generate import write_visit_transactions
from watershop_dagster.synthetic.footage import write_day
from watershop_dagster.synthetic.gallery import load_gallery

pytestmark = pytest.mark.slow

DAYS = [date(2025, 3, 1), date(2025, 3, 2)]
PEOPLE = ["John_Salley", "John_Savage", "John_Schneider", "John_Shimkus", "obama"]


class _Webhook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Webhook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, faces_dir, webhook):
    root = tmp_path_factory.mktemp("identity_ws")
    (root / CONFIG_FILENAME).write_text(
        'partitions_start: "2025-01-01"\n'
        "shops:\n  - id: water\n    timezone: Asia/Kolkata\n    cameras: [counter]\n"
        f"alerts:\n  webhook_url: {webhook}\n"
    )
    config = load_config(root / CONFIG_FILENAME)
    for role, person in (("staff", "John_Simm"), ("vip", "obama")):
        target = config.known_people_dir / role / person
        target.mkdir(parents=True)
        for photo in sorted((faces_dir / person).glob("*.jpg"))[:2]:
            shutil.copy(photo, target / photo.name)
    full = load_gallery(faces_dir)
    gallery = {name: full[name] for name in [*PEOPLE, "John_Simm"]}
    truths = {}
    for offset, day in enumerate(DAYS):
        truth = write_day(config.footage_root, config.shop("water"), "counter", day, gallery, duration_s=240,
                          visits_per_hour=45, counter_s=(20, 30), size=(640, 360), staff="John_Simm", seed=offset)
        write_visit_transactions(config, "water", day, truth, seed=offset)
        truths[day] = truth
    runs = run_range(DAYS[0], DAYS[-1], root / CONFIG_FILENAME)
    assert [r.failed_steps for r in runs if not r.success] == []
    return config, truths


def _marts(config, sql, *params):
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        return db.execute(sql, list(params)).fetchall()


def test_visits_customers_and_links_match_the_ground_truth(workspace):
    config, truths = workspace
    for day, truth in truths.items():
        customers = truth.filter(pl.col("role") == "customer")
        visits = lake.read_dataset(config.lake_root, "visits", shop_id="water", date=day)
        assert visits.filter(pl.col("role") != "staff").height == customers.height
        assert visits.filter(pl.col("role") == "staff").height >= 1  # staff seen, never a customer
        links = lake.read_dataset(config.lake_root, "transaction_visit_links", shop_id="water", date=day)
        assert links["visit_id"].null_count() == 0
        (count,) = _marts(config, "select visits from daily_visits where shop_id='water' and date=?", day)[0]
        assert count == customers.height
    # people seen on both days keep one id: unique customers == distinct true customers
    true_people = pl.concat(truths.values()).filter(pl.col("role") == "customer")["person"].n_unique()
    (unique,) = _marts(config, "select count(*) from unique_customers where shop_id='water'")[0]
    assert unique == true_people
    staff_rows = _marts(config, "select count(*) from unique_customers u join visit_log v using (shop_id, customer_id) "
                                "where v.role = 'staff'")[0][0]
    assert staff_rows == 0
    (opening,) = _marts(config, "select min(first_entry) from first_last_customer where shop_id='water'")[0]
    assert opening is not None


def test_the_daily_run_writes_the_shop_reports(workspace):
    config, _ = workspace
    for day in DAYS:
        folder = config.workspace_dir / "reports" / "water" / day.isoformat()
        assert (folder / "report.html").exists()
        assert list(folder.glob("*.png")) and list(folder.glob("*.csv"))
    assert (config.workspace_dir / "reports" / "water" / "2025-03" / "report.html").exists()


def test_vip_alert_is_delivered_to_the_webhook(workspace):
    config, truths = workspace
    vip_visits = sum(t.filter(pl.col("person") == "obama").height for t in truths.values())
    alerts = sum(lake.read_dataset(config.lake_root, "alerts", shop_id="water", date=d).height for d in DAYS)
    assert alerts == vip_visits
    defs = build_definitions(config.workspace_dir / CONFIG_FILENAME)
    sensor = defs.resolve_sensor_def("alerts_sensor")
    _Webhook.received.clear()
    with dg.build_sensor_context(instance=workspace_instance(config), resources={"watershop": defs.resources["watershop"]},
                                 repository_def=defs.get_repository_def()) as context:
        sensor.evaluate_tick(context)
    if vip_visits:
        assert {a["person_key"] for a in _Webhook.received} == {"vip/obama"}


def test_forget_erases_a_customer_everywhere(workspace):
    config, _ = workspace
    (customer,) = _marts(config, "select customer_id from customer_visit_counts order by visits desc, customer_id limit 1")[0]
    result = CliRunner().invoke(main, ["forget", customer, "--config", str(config.workspace_dir / CONFIG_FILENAME)])
    assert result.exit_code == 0, result.output
    for table in ("visit_log", "unique_customers", "customer_visit_counts", "transaction_visit_links"):
        assert _marts(config, f"select count(*) from {table} where customer_id = ?", customer)[0][0] == 0
    for day in DAYS:
        for dataset in ("visits", "customer_registry", "face_identities"):
            frame = lake.read_dataset(config.lake_root, dataset, shop_id="water", date=day)
            assert customer not in frame["customer_id"].to_list()
    audit = pl.read_parquet(config.lake_root / "privacy_audit" / "part.parquet")
    assert audit.height >= 1 and customer not in str(audit.to_dicts())
