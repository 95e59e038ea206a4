"""`watershop frigate listen` against the real loopback Mosquitto: messages land unchanged, once,
durably, across a SIGTERM, a kill -9 and a restart."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time

import pytest

from tests.frigate_helpers import (
    CAMERAS,
    ListenerProcess,
    free_port,
    frigate_workspace,
    landed_lines,
    needs_broker,
    publish_all,
    publisher,
    wait_for_lines,
)
from tests.test_frigate_events import match_visits
from watershop_dagster.config import load_config
from watershop_dagster.frigate.events import build_landed_camera_day
from watershop_dagster.frigate.landing import UNROUTED, LandingWriter
from watershop_dagster.frigate.listener import FrigateListener, MqttSettings
from watershop_dagster.frigate.simulate import ScriptedPerson, person_messages, supermarket_replay

pytestmark = [needs_broker, pytest.mark.services]
START = 1_717_236_000.0  # 2024-06-01 10:00 UTC
MOSQUITTO = "/usr/sbin/mosquitto"


def _landing(config_path, camera, day="2024-06-01"):
    return load_config(config_path).frigate_landing / "s1" / camera / f"{day}.ndjson"


def test_messages_land_unchanged_once_and_bad_ones_unrouted(tmp_path):
    config, prefix = frigate_workspace(tmp_path)
    person = ScriptedPerson("door", START, [(None, 1), ("entrance", 2), ("promo", 40)], event_id="e1")
    messages, _ = person_messages(person, random.Random(0))
    listener = ListenerProcess(config)
    client = publisher()
    try:
        publish_all(client, f"{prefix}/events", messages)
        publish_all(client, f"{prefix}/events", [messages[1]])  # a redelivery: same bytes again
        publish_all(client, f"{prefix}/events", [b"{not json", json.dumps({"type": "new", "after": {
            "id": "x", "camera": "garage", "start_time": START}})])
        publish_all(client, f"{prefix}/reviews", [json.dumps({"type": "new", "after": {
            "id": "r1", "camera": "door", "start_time": START, "severity": "detection"}})])
        wait_for_lines(_landing(config, "door"), len(messages) + 1)
        unrouted_dir = config.parent / "landing" / "frigate" / "s1" / UNROUTED
        deadline = time.monotonic() + 10
        while not list(unrouted_dir.glob("*.ndjson")) and time.monotonic() < deadline:
            time.sleep(0.05)
        unrouted_file = next(unrouted_dir.glob("*.ndjson"))
        wait_for_lines(unrouted_file, 2)
    finally:
        client.disconnect()
        assert listener.terminate() == 0
    door = landed_lines(_landing(config, "door"))
    assert [line["payload"] for line in door if line["topic"].endswith("/events")] == messages
    assert [line["topic"] for line in door].count(f"{prefix}/reviews") == 1
    assert all(line["received_at"] > START for line in door)
    unrouted = [line["payload"] for line in landed_lines(unrouted_file)]
    assert unrouted[0] == "{not json" and json.loads(unrouted[1])["after"]["camera"] == "garage"
    assert _landing(config, "door").read_bytes().endswith(b"\n")


def test_kill_and_restart_mid_stream_loses_and_doubles_nothing(tmp_path):
    config, prefix = frigate_workspace(tmp_path)
    replay = supermarket_replay(CAMERAS, START, people=40, seed=7)
    half = len(replay.messages) // 2
    listener = ListenerProcess(config)
    client = publisher()
    try:
        publish_all(client, f"{prefix}/events", replay.messages[:half])
        listener.kill()  # kill -9 mid-stream: the broker keeps the session's messages meanwhile
        publish_all(client, f"{prefix}/events", replay.messages[half:])
        publish_all(client, f"{prefix}/events", replay.messages[half - 20:half])  # redelivered duplicates
        listener = ListenerProcess(config)
        expected = {camera: [m for m in replay.messages if json.loads(m)["after"]["camera"] == camera]
                    for camera in CAMERAS}
        for camera, payloads in expected.items():
            wait_for_lines(_landing(config, camera), len(payloads))
    finally:
        client.disconnect()
        assert listener.terminate() == 0
    workspace = load_config(config)
    for camera, payloads in expected.items():
        landed = [line["payload"] for line in landed_lines(_landing(config, camera))]
        assert sorted(landed) == sorted(payloads)  # nothing lost, nothing doubled
        day = build_landed_camera_day(_landing(config, camera), workspace.frigate_landing, camera,
                                      workspace.shops[0].zones(camera), {}, (1280, 720))
        recall, precision, dwell_error = match_visits([v for v in replay.visits if v.camera == camera],
                                                      day.zone_visits)
        assert recall >= 0.95 and precision >= 0.95 and dwell_error <= 1.0


def test_the_listener_reconnects_and_resubscribes_after_a_broker_restart(tmp_path):
    if not shutil.which("mosquitto") and not os.path.exists(MOSQUITTO):
        pytest.skip("no mosquitto binary to run a private broker")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")

    def broker():
        process = subprocess.Popen([shutil.which("mosquitto") or MOSQUITTO, "-c", str(conf)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process
            except OSError:
                time.sleep(0.05)
        raise AssertionError("private mosquitto did not start")

    config, prefix = frigate_workspace(tmp_path)
    config.write_text(config.read_text() + f"  mqtt_port: {port}\n")
    replay = supermarket_replay(CAMERAS, START, people=6, seed=9)
    door = [m for m in replay.messages if json.loads(m)["after"]["camera"] == "door"]
    first = broker()
    listener = ListenerProcess(config)
    try:
        client = publisher(port)
        publish_all(client, f"{prefix}/events", door[:3])
        wait_for_lines(_landing(config, "door"), 3)
        client.disconnect()
        first.terminate()
        first.wait(10)  # the broker goes away (and, without persistence, forgets the session)
        second = broker()
        listener.wait_for("subscribed to", 40, count=2)
        client = publisher(port)
        publish_all(client, f"{prefix}/events", door[3:])
        lines = wait_for_lines(_landing(config, "door"), len(door))
        client.disconnect()
    finally:
        assert listener.terminate() == 0
        for process in (first, locals().get("second")):
            if process and process.poll() is None:
                process.terminate()
                process.wait(10)
    assert [line["payload"] for line in lines] == door


def test_a_failed_write_stops_unacknowledged_and_the_message_lands_after_a_restart(tmp_path):
    config, prefix = frigate_workspace(tmp_path)
    workspace = load_config(config)
    blocked = workspace.frigate_landing / "s1"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the shop's landing folder belongs")  # every write fails, even as root
    settings = MqttSettings(topic_prefix=prefix, client_id=f"watershop-{prefix}")
    payload = person_messages(ScriptedPerson("door", START, [(None, 1)], event_id="w1"), random.Random(0))[0][0]

    def run_listener() -> tuple[FrigateListener, list, threading.Thread]:
        listener = FrigateListener(settings, LandingWriter(workspace.frigate_landing, "s1", {"door"},
                                                           workspace.shops[0].tz), 0.1)
        errors: list = []
        thread = threading.Thread(target=lambda: _run(listener, errors), daemon=True)
        thread.start()
        assert listener.connected.wait(10)
        return listener, errors, thread

    def _run(listener, errors):
        try:
            listener.run()
        except RuntimeError as exc:
            errors.append(exc)

    listener, errors, thread = run_listener()
    client = publisher()
    publish_all(client, f"{prefix}/events", [payload])
    thread.join(10)
    assert errors and not thread.is_alive()  # stopped, the message not acknowledged
    blocked.unlink()
    listener, errors, thread = run_listener()  # the broker redelivers the unacknowledged message
    lines = wait_for_lines(_landing(config, "door"), 1)
    listener.stop()
    thread.join(10)
    client.disconnect()
    assert [line["payload"] for line in lines] == [payload] and not errors
