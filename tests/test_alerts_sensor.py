"""The alerts sensor against a real webhook server: a failing alert is retried on a later tick (from
the delivery log, once its back-off has passed), alerts already delivered are never sent again,
and one failure holds back no other alert."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import polars as pl

from assets.identity import ALERTS
from assets.partitions import shop_day_key
from watershop_dagster import catalog, lake
from watershop_dagster.alerts.log import DELIVERED, read_log
from watershop_dagster.config import init_workspace
from watershop_dagster.orchestration.assemble import build_definitions

DAY1, DAY2 = date(2024, 6, 1), date(2024, 6, 2)


class FlakyWebhook:
    """Answers 500 to the first POST of each alert id in `fail_once`, 200 otherwise; keeps what it took."""

    def __init__(self, fail_once: set[str]):
        hook = self
        self.received: list[str] = []
        self.fail_once = set(fail_once)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                alert_id = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["alert_id"]
                alert_id = alert_id.removeprefix("known_person:")  # the rule's name, then the visit's alert
                if alert_id in hook.fail_once:
                    hook.fail_once.discard(alert_id)
                    self.send_response(500)
                else:
                    hook.received.append(alert_id)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _alerts(ids: list[str], day: date) -> pl.DataFrame:
    """Visits of the vip an hour apart (beyond the rule's cooldown)."""
    return pl.DataFrame([{"alert_id": i, "camera": "counter", "ts_utc": datetime(day.year, day.month, day.day, 9 + n,
                                                                                  tzinfo=UTC),
                          "person_key": "vip/obama", "role": "vip", "visit_id": f"v-{i}", "confidence": 0.9}
                         for n, i in enumerate(ids)])


def test_a_failed_alert_is_retried_alone_and_blocks_nothing(tmp_path):
    hook = FlakyWebhook(fail_once={"a2"})
    config = init_workspace(tmp_path, shop_id="water", timezone="UTC", cameras=["counter"])
    path = tmp_path / "watershop.yaml"
    path.write_text(path.read_text().replace(
        "alerts:\n", f"alerts:\n  webhook_url: {hook.url}\n  retry_first_seconds: 0\n", 1))
    lake.write_dataset(_alerts(["a1", "a2", "a3"], DAY1), config.lake_root, catalog.ALERTS, shop_id="water", date=DAY1)
    lake.write_dataset(_alerts(["b1"], DAY2), config.lake_root, catalog.ALERTS, shop_id="water", date=DAY2)
    defs = build_definitions(path)
    sensor = defs.resolve_sensor_def("alerts_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        for day in (DAY1, DAY2):
            instance.report_runless_asset_event(dg.AssetMaterialization(ALERTS, partition=shop_day_key("water", day)))
        cursor = None
        for _tick in range(3):
            with dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def(),
                                         resources={"watershop": defs.resources["watershop"]}) as context:
                result = sensor.evaluate_tick(context)
            cursor = result.cursor
            if _tick == 0:
                assert sorted(hook.received) == ["a1", "a3", "b1"]  # a2 failed; the rest went out
    assert sorted(hook.received) == ["a1", "a2", "a3", "b1"]  # a2 on the next tick, nothing twice
    assert json.loads(cursor)["pending"] == {}
    log = read_log(config, "water")
    assert log.height == 4 and set(log["status"]) == {DELIVERED} and log["attempts"].sum() == 5
    hook.server.shutdown()
