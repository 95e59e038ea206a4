"""Test-only helpers for the Frigate tests: a workspace with a `frigate:` section, the real loopback
Mosquitto, a listener subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from watershop_dagster.config import init_workspace, load_config

BROKER = ("127.0.0.1", 1883)
CAMERAS = {"door": ["entrance", "promo"], "aisle": ["dairy", "bakery"]}
ZONES_YAML = """\
    cameras:
      door:
        detect: {width: 1280, height: 720, fps: 5}
        zones:
          entrance: {coordinates: "0,0.6,0.3,0.6,0.3,1,0,1", kind: entrance}
          promo: {coordinates: "0.5,0.2,1,0.2,1,1,0.5,1", kind: promo, loitering_time: 30}
      aisle:
        detect: {width: 1280, height: 720, fps: 5}
        zones:
          dairy: {coordinates: "0,0,0.45,0,0.45,1,0,1", kind: shelf, loitering_time: 30}
          bakery: {coordinates: "0.55,0,1,0,1,1,0.55,1", kind: shelf}
"""


def broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1):
            return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(not broker_up(), reason="no MQTT broker (Mosquitto) on 127.0.0.1:1883")


def frigate_workspace(root: Path, extra: str = "") -> tuple[Path, str]:
    """A one-shop workspace (UTC) with CAMERAS and their zones, a `frigate:` section on a unique topic
    prefix and client id (other tests share the broker); (config path, topic prefix)."""
    init_workspace(root, shop_id="s1", timezone="UTC", cameras=["door", "aisle"])
    path = root / "watershop.yaml"
    text = path.read_text().replace('    cameras: ["door", "aisle"]\n', ZONES_YAML)
    prefix = f"frigate-test-{uuid.uuid4().hex[:10]}"
    text += (f"\nfrigate:\n  topic_prefix: {prefix}\n  client_id: watershop-{prefix}\n  fsync_seconds: 0.2\n"
             + extra)
    path.write_text(text)
    load_config(path)
    return path, prefix


def publisher(port: int = BROKER[1]) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(BROKER[0], port)
    client.loop_start()
    return client


def publish_all(client: mqtt.Client, topic: str, payloads: list[str | bytes]) -> None:
    infos = [client.publish(topic, payload, qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(5)


class ListenerProcess:
    """`watershop frigate listen` in a subprocess, started and waited for until it has subscribed."""

    def __init__(self, config: Path):
        self.config = config
        self.log = config.parent / f"listener-{uuid.uuid4().hex[:6]}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watershop_dagster.cli", "frigate", "listen", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.wait_for("subscribed to", 30)

    def wait_for(self, text: str, timeout: float, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.read_text().count(text) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"listener exited {self.proc.returncode}: {self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"listener never logged {text!r}: {self.log.read_text()}")

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(15)


def landed_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_lines(path: Path, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = landed_lines(path)
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    return landed_lines(path)


class FrigateApi:
    """A real local HTTP server answering GET /api/events like Frigate: filters after/before on
    start_time (exclusive), camera and label, newest first, at most `limit`."""

    def __init__(self, events: list[dict]):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlparse

        api = self
        self.events, self.requests = events, 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                if url.path != "/api/events":
                    self.send_error(404)
                    return
                api.requests += 1
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                chosen = [e for e in api.events
                          if float(query.get("after", "-inf")) < e["start_time"] < float(query.get("before", "inf"))
                          and query.get("camera", e["camera"]) == e["camera"]
                          and query.get("label", e["label"]) == e["label"]]
                chosen.sort(key=lambda e: e["start_time"], reverse=True)
                body = json.dumps(chosen[:int(query.get("limit", 100))]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def zone_points(zones) -> dict[str, tuple[float, float]]:
    """A point inside each zone (its vertices' mean: the test zones are convex)."""
    return {zone.name: tuple(float(v) for v in zone.polygon.mean(axis=0)) for zone in zones}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives, with arrival times."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        sink = self
        self.received: list[tuple[float, str]] = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.received.append((time.time(), envelope.content.decode("utf-8", "replace")))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


class WebhookSink:
    """A real HTTP server taking alert POSTs; the first `failures` answer 500."""

    def __init__(self, failures: int = 0):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.received: list[tuple[float, dict]] = []
        self.failures = failures
        self.attempts = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.attempts += 1
                if sink.attempts <= sink.failures:
                    self.send_response(500)
                else:
                    sink.received.append((time.time(), json.loads(body)))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
