"""Live alerts: the rules over Frigate's messages (known person, loitering, cooldown, staff), the
live delivery (per-channel threads, back-off, one failing channel holds back nothing, a success is
never re-sent, every outcome in the lake's delivery log) against a real webhook server and a real
SMTP server (aiosmtpd), and end to end through `frigate listen` and the loopback Mosquitto within
seconds."""

from __future__ import annotations

import json
import random
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from tests.frigate_helpers import (
    BROKER,
    ListenerProcess,
    SmtpSink,
    WebhookSink,
    frigate_workspace,
    needs_broker,
    publish_all,
    publisher,
)
from tests.test_frigate_events import START, zones_of
from watershop_dagster.alerts.channels import configured_senders
from watershop_dagster.alerts.delivery import LiveDelivery
from watershop_dagster.alerts.log import DELIVERED, GIVEN_UP, read_log
from watershop_dagster.config import AlertRule, load_config
from watershop_dagster.frigate.alerts import AlertRules
from watershop_dagster.frigate.simulate import ScriptedPerson, person_messages

PEOPLE = {"alice": "vip/alice", "sam": "staff/sam", "bob": "blocked/bob"}
RULES = [AlertRule(name="known", kind="known_person", cooldown_seconds=600, channels=["webhook", "email"]),
         AlertRule(name="loiter", kind="loitering", cooldown_seconds=0, channels=["webhook"])]


def run(rules: AlertRules, payloads: list[str]):
    return [alert for n, payload in enumerate(payloads) for alert in rules.on_message(payload, START + 1000 + n)]


def test_a_known_person_alerts_once_per_cooldown_and_staff_never():
    rules = AlertRules("s1", RULES, PEOPLE, zones_of("door"))
    rng = random.Random(3)
    alice = person_messages(ScriptedPerson("door", START, [(None, 1), ("entrance", 2)], "Alice", "a1"), rng)[0]
    again = person_messages(ScriptedPerson("door", START + 60, [(None, 1)], "Alice", "a2"), rng)[0]
    sam = person_messages(ScriptedPerson("door", START, [(None, 1), ("promo", 90)], "Sam", "s1"), rng)[0]
    alerts = run(rules, alice + again + sam)
    assert [(a.rule, a.person_key, a.event_id) for a in alerts] == [("known", "vip/alice", "a1")]


def test_loitering_fires_from_messages_and_from_the_tick_at_loitering_time():
    rules = AlertRules("s1", RULES, PEOPLE, zones_of("door"))
    rng = random.Random(4)
    stays = person_messages(ScriptedPerson("door", START, [(None, 1), ("promo", 45)], None, "p1"), rng)[0]
    alerts = run(rules, stays)  # the end message comes 46 s later: loitering seen on it
    assert [(a.rule, a.zone, a.ts) for a in alerts] == [("loiter", "promo", START + 1 + 30)]
    quiet = person_messages(ScriptedPerson("door", START, [(None, 1), ("promo", 45)], None, "p2"), rng)[0][:2]
    assert run(rules, quiet) == []  # in the zone, no further message
    received = START + 1000 + 1  # the second message (entry at START + 1) was received then
    assert rules.on_tick(received + 29) == []
    fired = rules.on_tick(received + 30.1)
    assert [(a.event_id, a.zone) for a in fired] == [("p2", "promo")] and rules.on_tick(received + 40) == []


def _wait_for(delivery: LiveDelivery, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.time() + timeout
    while len([o for o in delivery.outcomes if o["status"] != "failed"]) < count and time.time() < deadline:
        time.sleep(0.02)
    return list(delivery.outcomes)


def test_live_delivery_retries_with_back_off_and_one_failing_channel_holds_back_nothing(tmp_path):
    webhook, smtp = WebhookSink(failures=2), SmtpSink()
    config_path, _ = frigate_workspace(tmp_path)
    text = config_path.read_text().replace("alerts:\n", f"alerts:\n  webhook_url: {webhook.url}\n"
                                           "  retry_first_seconds: 0.05\n  max_attempts: 3\n"
                                           f"  smtp: {{port: {smtp.port}, recipients: [owner@shop.test]}}\n", 1)
    config_path.write_text(text)
    config = load_config(config_path)
    rules = AlertRules("s1", RULES, PEOPLE, [])
    delivery = LiveDelivery(config, "s1", configured_senders(config)).start()
    try:
        alice = person_messages(ScriptedPerson("door", START, [(None, 1)], "Alice", "a1"), random.Random(5))[0]
        (alert,) = rules.on_message(alice[0], time.time())
        delivery.submit(alert)
        outcomes = _wait_for(delivery, 2)
        assert len(smtp.received) == 1 and "vip/alice" in smtp.received[0][1]  # not held back by the webhook
        assert [(o["channel"], o["status"], o["attempts"]) for o in outcomes if o["channel"] == "webhook"] == [
            ("webhook", "failed", 1), ("webhook", "failed", 2), ("webhook", DELIVERED, 3)]
        assert len(webhook.received) == 1  # the successful POST is not repeated
    finally:
        delivery.stop()
        smtp.close()
    broken = config.model_copy(update={"alerts": config.alerts.model_copy(update={
        "smtp": config.alerts.smtp.model_copy(update={"port": 1, "timeout_seconds": 1})})})  # nothing on port 1
    delivery = LiveDelivery(broken, "s1", configured_senders(broken)).start()
    try:
        bob = person_messages(ScriptedPerson("door", START, [(None, 1)], "Bob", "b1"), random.Random(6))[0]
        (second,) = rules.on_message(bob[0], time.time())
        delivery.submit(second)
        outcomes = _wait_for(delivery, 2)
        assert ("email", GIVEN_UP, 3) in [(o["channel"], o["status"], o["attempts"]) for o in outcomes]
        assert len(webhook.received) == 2
    finally:
        delivery.stop()
        webhook.close()
    log = read_log(config, "s1").sort("triggered_at", "channel")
    assert log.select("person_key", "channel", "status").rows() == [
        ("vip/alice", "email", DELIVERED), ("vip/alice", "webhook", DELIVERED),
        ("blocked/bob", "email", GIVEN_UP), ("blocked/bob", "webhook", DELIVERED)]


@needs_broker
@pytest.mark.services
def test_listen_delivers_alerts_on_every_channel_within_seconds(tmp_path):
    webhook, smtp = WebhookSink(), SmtpSink()
    alert_topic = f"watershop-test-{uuid.uuid4().hex[:8]}/alerts"
    config, prefix = frigate_workspace(tmp_path)
    config.write_text(config.read_text().replace("alerts:\n", (
        f"alerts:\n  webhook_url: {webhook.url}\n  mqtt_topic: {alert_topic}\n"
        f"  smtp: {{port: {smtp.port}, recipients: [owner@shop.test]}}\n"
        "  rules:\n    - {name: known, kind: known_person, channels: [webhook, mqtt, email]}\n"
        "    - {name: loiter, kind: loitering, channels: [mqtt]}\n"), 1))
    (tmp_path / "known_people" / "vip" / "alice").mkdir(parents=True)
    received: list[tuple[float, dict]] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}")
    watcher.on_message = lambda c, u, m: received.append((time.time(), json.loads(m.payload)))
    watcher.connect(*BROKER)
    watcher.subscribe(f"{alert_topic}/#", qos=1)
    watcher.loop_start()
    listener = ListenerProcess(config)
    client = publisher()
    try:
        now = time.time()
        alice = person_messages(ScriptedPerson("door", now, [(None, 1), ("entrance", 2)], "alice", "a1"),
                                random.Random(7))[0]
        sent = time.time()
        publish_all(client, f"{prefix}/events", alice[:1])
        deadline = time.time() + 10
        while (not received or not webhook.received or not smtp.received) and time.time() < deadline:
            time.sleep(0.02)
        latencies = [received[0][0] - sent, webhook.received[0][0] - sent, smtp.received[0][0] - sent]
        assert max(latencies) <= 5, latencies
        assert received[0][1]["person_key"] == "vip/alice" and webhook.received[0][1]["rule"] == "known"
        loiterer = person_messages(ScriptedPerson("door", time.time() - 29, [("promo", 60)], None, "l1"),
                                   random.Random(8))[0]
        update = json.loads(loiterer[0])
        update["type"], update["after"]["frame_time"] = "update", time.time()  # a better snapshot, now
        publish_all(client, f"{prefix}/events", [loiterer[0], json.dumps(update)])  # in promo for 29 s: due in ~1 s
        deadline = time.time() + 10
        while len(received) < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert received[-1][1]["rule"] == "loiter" and received[-1][1]["zone"] == "promo"
    finally:
        client.disconnect()
        assert listener.terminate() == 0
        watcher.loop_stop()
        watcher.disconnect()
        webhook.close()
        smtp.close()
    log = read_log(load_config(config), "s1")
    assert log["alert_id"].n_unique() == 2 and log.height == 4 and set(log["status"]) == {DELIVERED}
