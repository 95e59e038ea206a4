"""The shared alert layer against real endpoints: a local HTTP server (webhook), the loopback
Mosquitto (MQTT), aiosmtpd (e-mail) and a real lake for the delivery log; and the recordings-path
sensor evaluating known-person, loitering and falling-object rules over a real lake."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import paho.mqtt.client as mqtt
import polars as pl
import pytest
import yaml

from assets.partitions import camera_day_key, shop_day_key
from tests.frigate_helpers import BROKER, SmtpSink, WebhookSink, free_port, needs_broker
from watershop_dagster import catalog, lake
from watershop_dagster.alerts.channels import configured_senders, webhook_sender
from watershop_dagster.alerts.delivery import RetryPolicy, deliver
from watershop_dagster.alerts.log import DELIVERED, FAILED, GIVEN_UP, read_log, recent_alerts
from watershop_dagster.alerts.model import SOURCE_RECORDINGS, Alert, Cooldown
from watershop_dagster.alerts.rules import partition_alerts
from watershop_dagster.config import load_config
from watershop_dagster.orchestration.assemble import build_definitions

DAY = date(2024, 6, 1)
T0 = datetime(2024, 6, 1, 10, tzinfo=UTC).timestamp()


def workspace(tmp_path, **alerts) -> tuple:
    config = {"shops": [{"id": "s1", "timezone": "UTC", "cameras": ["counter", "aisle"]}],
              "partitions_start": "2024-01-01", "alerts": alerts}
    path = tmp_path / "watershop.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, load_config(path)


def alert(n: int, subject: str = "vip/alice", rule: str = "known", ts: float = T0, cooldown_s: float = 300) -> Alert:
    return Alert(alert_id=f"{rule}:{n}", source=SOURCE_RECORDINGS, rule=rule, kind="known_person", shop_id="s1",
                 camera="counter", event_id=f"v{n}", subject=subject, ts=ts, triggered_at=ts + 1,
                 person_key=subject, role=subject.split("/")[0], cooldown_s=cooldown_s)


class Subscriber:
    """A real MQTT subscriber on the loopback broker, keeping the payloads it receives."""

    def __init__(self, topic: str):
        self.received: list[dict] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, m: self.received.append(json.loads(m.payload))
        self.client.connect(*BROKER)
        self.client.subscribe(f"{topic}/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)  # subscribed before anything is published

    def wait(self, count: int, timeout: float = 5) -> list[dict]:
        deadline = time.time() + timeout
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_back_off_doubles_up_to_its_cap_then_gives_up():
    policy = RetryPolicy(first_s=5, max_s=30, max_attempts=5)
    assert [policy.next_attempt(n, 100) for n in range(1, 6)] == [105, 110, 120, 130, None]


def test_cooldown_is_per_rule_and_subject_in_either_time_order():
    cooldown = Cooldown()
    assert cooldown.admit("known", "vip/alice", 1000, 300)
    assert not cooldown.admit("known", "vip/alice", 1200, 300)  # within 300 s
    assert not cooldown.admit("known", "vip/alice", 800, 300)  # earlier, still within
    assert cooldown.admit("known", "blocked/bob", 1200, 300)  # another person
    assert cooldown.admit("loiter", "vip/alice", 1200, 300)  # another rule
    assert cooldown.admit("known", "vip/alice", 1300, 300)  # 300 s after the admitted one


@needs_broker
@pytest.mark.services
def test_every_channel_delivers_once_and_a_dead_endpoint_is_retried_with_back_off(tmp_path):
    webhook, smtp = WebhookSink(), SmtpSink()
    topic = f"watershop-test-{uuid.uuid4().hex[:8]}/alerts"
    _, config = workspace(tmp_path, webhook_url=webhook.url, mqtt_topic=topic,
                          mqtt={"host": BROKER[0], "port": BROKER[1]},
                          smtp={"port": smtp.port, "recipients": ["owner@shop.test"]},
                          retry_first_seconds=5, max_attempts=3)
    subscriber = Subscriber(topic)
    try:
        senders = configured_senders(config)
        assert set(senders) == {"webhook", "mqtt", "email"}
        dead = dict(senders, webhook=webhook_sender(f"http://127.0.0.1:{free_port()}/down", 2))
        alerts = [alert(1), alert(2, "blocked/bob"), alert(3, ts=T0 + 60)]  # alice again within her cooldown
        now = T0 + 100
        report = deliver(config, "s1", alerts, dead, clock=lambda: now)
        assert (report.delivered, report.failed, report.suppressed) == (4, 2, 1)
        assert sorted(m["alert_id"] for m in subscriber.wait(2)) == ["known:1", "known:2"]
        assert len(smtp.received) == 2 and "vip/alice" in smtp.received[0][1]
        log = read_log(config, "s1", [DAY])
        webhook_rows = log.filter(pl.col("channel") == "webhook").sort("alert_id")
        assert webhook_rows["status"].to_list() == [FAILED, FAILED]
        assert webhook_rows["attempts"].to_list() == [1, 0]  # the second was not tried: the endpoint was down
        # the endpoint is back, but the back-off has not passed: nothing is sent
        assert deliver(config, "s1", [], senders, clock=lambda: now + 1).retried == 0
        assert webhook.received == []
        # after it: only the webhook deliveries, once each; MQTT and e-mail are never sent again
        report = deliver(config, "s1", alerts, senders, clock=lambda: now + 6)
        assert (report.retried, report.delivered, report.already_logged) == (2, 2, 2)
        assert sorted(body["alert_id"] for _, body in webhook.received) == ["known:1", "known:2"]
        time.sleep(0.5)
        assert len(subscriber.received) == 2 and len(smtp.received) == 2
        assert deliver(config, "s1", alerts, senders, clock=lambda: now + 600).retried == 0
        assert len(webhook.received) == 2

        recent = recent_alerts(config, limit=10)
        assert recent.columns[:10] == ["time", "shop", "camera", "rule", "kind", "person", "role", "zone",
                                       "channel", "status"]
        assert recent.height == 6 and set(recent["status"]) == {DELIVERED}
        assert set(recent["person"]) == {"vip/alice", "blocked/bob"} and recent["time"].is_sorted(descending=True)
        assert recent_alerts(config, limit=2).height == 2
    finally:
        subscriber.close()
        webhook.close()
        smtp.close()


def test_a_failing_channel_is_given_up_after_its_attempts_and_holds_back_no_other(tmp_path):
    webhook = WebhookSink()
    _, config = workspace(tmp_path, webhook_url=webhook.url, retry_first_seconds=0, max_attempts=2,
                          smtp={"port": free_port(), "recipients": ["x@shop.test"], "timeout_seconds": 1})
    try:
        senders = configured_senders(config)
        deliver(config, "s1", [alert(1), alert(2, "blocked/bob")], senders)
        assert len(webhook.received) == 2  # the dead SMTP server held back neither alert's webhook
        deliver(config, "s1", [], senders)
        email = read_log(config, "s1").filter(pl.col("channel") == "email").sort("alert_id")
        assert email["status"].to_list() == [GIVEN_UP, FAILED]  # 2nd alert not tried twice: server unreachable
        assert deliver(config, "s1", [], senders).retried == 1
        email = read_log(config, "s1").filter(pl.col("channel") == "email")
        assert email["status"].to_list() == [GIVEN_UP, GIVEN_UP] and email["attempts"].to_list() == [2, 2]
        assert deliver(config, "s1", [], senders).retried == 0 and len(webhook.received) == 2
    finally:
        webhook.close()


def _lake_rows(config) -> None:
    at = lambda s: datetime(2024, 6, 1, 10, tzinfo=UTC) + timedelta(seconds=s)  # noqa: E731
    lake.write_dataset(pl.DataFrame({
        "alert_id": ["a1", "a2"], "camera": ["counter"] * 2, "ts_utc": [at(0), at(4000)],
        "person_key": ["vip/alice", "staff/sam"], "role": ["vip", "staff"], "visit_id": ["v1", "v2"],
        "confidence": [0.9, 0.9]}), config.lake_root, catalog.ALERTS, shop_id="s1", date=DAY)
    lake.write_dataset(pl.DataFrame({
        "camera": ["aisle"] * 3, "zone": ["promo"] * 3, "kind": ["promo"] * 3, "category": [None] * 3,
        "track_id": ["t1", "t2", "t3"], "identity": [None, "staff/sam", None],
        "start_ts": [at(100), at(200), at(300)], "alert_ts": [at(130), at(230), at(330)],
        "exit_ts": [at(200), at(300), at(400)], "dwell_s": [100.0] * 3, "loitering_time_s": [30.0] * 3,
        "source": ["watershop"] * 3}), config.lake_root, catalog.LOITERING_EVENTS, shop_id="s1", date=DAY,
        camera="aisle")
    lake.write_dataset(pl.DataFrame({
        "event_id": ["f1", "f2", "f3"], "zone": ["shelf_a", "shelf_a", "shelf_a"],
        "release_utc": [at(1000), at(1100), at(2000)], "landing_utc": [at(1001), at(1101), at(2001)],
        "drop_height_px": [100.0] * 3, "confidence": [0.9] * 3}), config.lake_root, catalog.FALLING_OBJECT_EVENTS,
        shop_id="s1", date=DAY, camera="aisle")


def test_the_sensor_delivers_the_recordings_rules_and_keeps_its_cursor_through_failures(tmp_path):
    webhook = WebhookSink(failures=1)  # the first POST is answered 500
    path, config = workspace(tmp_path, webhook_url=webhook.url, retry_first_seconds=0)
    _lake_rows(config)
    corrupt = lake.partition_file(config.lake_root, catalog.LOITERING_EVENTS.name, shop_id="s1",
                                  date=DAY.isoformat(), camera="counter")
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not parquet")
    defs = build_definitions(path)
    sensor = defs.resolve_sensor_def("alerts_sensor")
    materialized = [(catalog.ALERTS, shop_day_key("s1", DAY)), (catalog.LOITERING_EVENTS, camera_day_key("s1", "aisle", DAY)),
                    (catalog.LOITERING_EVENTS, camera_day_key("s1", "counter", DAY)),
                    (catalog.FALLING_OBJECT_EVENTS, camera_day_key("s1", "aisle", DAY))]

    def tick(instance, cursor):
        with dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def(),
                                     resources={"watershop": defs.resources["watershop"]}) as context:
            return sensor.evaluate_tick(context).cursor

    with dg.DagsterInstance.ephemeral() as instance:
        for entry, key in materialized:
            instance.report_runless_asset_event(dg.AssetMaterialization(entry.asset_key, partition=key))
        cursor = tick(instance, None)
        state = json.loads(cursor)
        assert set(state["after"]) == {"alerts", "loitering_events", "falling_object_events"}
        assert list(state["pending"]) == [f"loitering_events|{camera_day_key('s1', 'counter', DAY)}"]
        # known person alice (not staff sam), loiterers t1 and t3 (not staff), falls f1 and f3 (f2 in f1's cooldown)
        expected = {"known_person:a1", "loitering:aisle:t1:promo:2024-06-01T10:01:40+00:00",
                    "loitering:aisle:t3:promo:2024-06-01T10:05:00+00:00", "falling_object:aisle:f1",
                    "falling_object:aisle:f3"}
        assert len(webhook.received) == 4 and webhook.attempts == 5  # the first POST failed alone
        log = read_log(config, "s1")
        assert set(log["alert_id"]) == expected and log.filter(pl.col("status") == FAILED).height == 1
        cursor = tick(instance, cursor)  # the failed one is retried (back-off 0), nothing else resent
        assert {body["alert_id"] for _, body in webhook.received} == expected and len(webhook.received) == 5
        corrupt.unlink()  # the unreadable partition is readable again (empty): evaluated, no longer pending
        cursor = tick(instance, cursor)
        assert json.loads(cursor)["pending"] == {} and len(webhook.received) == 5
        assert set(read_log(config, "s1")["status"]) == {DELIVERED}
        fall = next(body for _, body in webhook.received if body["kind"] == "falling_object")
        assert fall["zone"] == "shelf_a" and fall["camera"] == "aisle" and fall["drop_height_px"] == 100.0
    webhook.close()


def test_a_frigate_fed_shop_gets_only_its_falls_evaluated_from_the_lake(tmp_path):
    _, config = workspace(tmp_path)
    _lake_rows(config)
    recordings = {name: partition_alerts(config, name, "s1", DAY, camera, T0)
                  for name, camera in (("alerts", None), ("loitering_events", "aisle"), ("falling_object_events", "aisle"))}
    assert {name: len(alerts) for name, alerts in recordings.items()} == {
        "alerts": 1, "loitering_events": 2, "falling_object_events": 3}  # before the cooldown
    assert {a.subject for a in recordings["loitering_events"]} == {"aisle/t1/promo", "aisle/t3/promo"}
    path = tmp_path / "watershop.yaml"
    path.write_text(path.read_text() + "frigate: {mqtt_port: 1883}\n")
    fed = load_config(path)
    assert partition_alerts(fed, "alerts", "s1", DAY, None, T0) == []  # `frigate listen` raises these live
    assert partition_alerts(fed, "loitering_events", "s1", DAY, "aisle", T0) == []
    assert len(partition_alerts(fed, "falling_object_events", "s1", DAY, "aisle", T0)) == 3
