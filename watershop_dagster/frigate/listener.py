"""`watershop frigate listen`: subscribe to Frigate's MQTT topics and land every message.

A persistent session (fixed client id, clean_session off, QoS 1) makes the broker keep messages
while the listener is away (restart, crash); a message is acknowledged only once its line is in the
landing file, and a write that fails stops the listener unacknowledged; paho reconnects with back-off after a broker restart
and `on_connect` subscribes again every time. A redelivered message is recognised by its identity
(landing.message_identity) and not written twice. SIGTERM/SIGINT: disconnect, fsync, exit 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

from watershop_dagster.frigate.landing import LandingWriter

log = logging.getLogger(__name__)

QOS = 1
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30
KEEPALIVE_SECONDS = 30
TOPICS = ("events", "reviews")

#: called with (topic, payload text, received_at epoch s) after a new message has landed
OnLanded = Callable[[str, str, float], None]


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "frigate"
    username: str | None = None
    password: str | None = None
    client_id: str = "watershop-frigate"


class FrigateListener:
    def __init__(self, settings: MqttSettings, writer: LandingWriter, fsync_seconds: float = 1.0,
                 on_landed: OnLanded | None = None):
        self.settings, self.writer, self.fsync_seconds, self.on_landed = settings, writer, fsync_seconds, on_landed
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.connections = 0
        self.failed: BaseException | None = None
        # manual ack: the broker's copy is released only once the line is in the landing file
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                                  clean_session=False, manual_ack=True)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        self.client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def topics(self) -> list[str]:
        return [f"{self.settings.topic_prefix}/{name}" for name in TOPICS]

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT connect refused: %s", reason_code)
            return
        client.subscribe([(topic, QOS) for topic in self.topics()])
        self.connections += 1
        log.info("connected to %s:%s", self.settings.host, self.settings.port)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.connected.set()
        log.info("subscribed to %s", self.topics())

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("MQTT connection lost (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message):
        received_at = time.time()
        payload = message.payload.decode("utf-8", "surrogateescape")
        try:
            landed = self.writer.append(message.topic, payload, received_at)
        except Exception as exc:  # disk full, permissions: stop unacked, the broker redelivers after a restart
            log.exception("cannot land a message on %s; stopping", message.topic)
            self.failed = exc
            self.stop()
            return
        client.ack(message.mid, message.qos)
        if landed is not None and self.on_landed:
            try:
                self.on_landed(message.topic, payload, received_at)
            except Exception:  # an alert bug must never stop landing
                log.exception("alert evaluation failed for a message on %s", message.topic)

    def run(self) -> None:
        """Until stop(): connect (retrying while the broker is down), land messages, fsync in batches."""
        self.client.connect_async(self.settings.host, self.settings.port, KEEPALIVE_SECONDS)
        self.client.loop_start()
        try:
            while not self.stopping.wait(self.fsync_seconds):
                self.writer.sync()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self.writer.close()
        if self.failed is not None:
            raise RuntimeError(f"landing failed: {self.failed}") from self.failed

    def stop(self, *_signal) -> None:
        self.stopping.set()


class LiveAlerts(Protocol):
    def start(self) -> LiveAlerts: ...
    def handle(self, topic: str, payload: str, received_at: float) -> None: ...
    def stop(self) -> None: ...


def listen(settings: MqttSettings, landing_root: Path, shop_id: str, cameras: set[str], tz: ZoneInfo,
           fsync_seconds: float = 1.0,
           make_alerts: Callable[[mqtt.Client], LiveAlerts] | None = None) -> FrigateListener:
    """Run a listener in this (main) thread until SIGTERM or SIGINT; returns it for its counters.
    `make_alerts(client)` builds live alerts that may publish through the listener's own client."""
    listener = FrigateListener(settings, LandingWriter(landing_root, shop_id, cameras, tz), fsync_seconds)
    alerts = make_alerts(listener.client).start() if make_alerts else None
    listener.on_landed = alerts.handle if alerts else None
    signal.signal(signal.SIGTERM, listener.stop)
    signal.signal(signal.SIGINT, listener.stop)
    try:
        listener.run()
    finally:
        if alerts:
            alerts.stop()
    return listener
