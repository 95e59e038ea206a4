"""Live alerts inside `watershop frigate listen`: rules over Frigate's messages, delivered in seconds.

`AlertRules` is pure state over the message stream (no I/O): a known person of a rule's roles is
seen (Frigate's sub_label), or a person's presence in a loitering zone reaches its loitering_time,
counted in the messages' own frame_time; a tick fires loitering without a new message (Frigate
publishes only on changes), with the clock offset between Frigate and us taken from the object's
last message. Each (rule, subject) fires at most once per cooldown; the subject is the known
person, else the tracked object. Staff never raise loitering alerts.

`AlertService` runs the rules on a delivery thread: every alert goes to its rule's channels
(webhook POST, MQTT publish to <alert_topic>/<rule>, e-mail over SMTP), each retried with back-off
on failure; one failing channel never holds back another or a later alert, and a channel that
succeeded is never sent again. Each alert with its deliveries is appended to the delivery log
(NDJSON beside the landing files: <shop>/_alerts/<day>.ndjson), which the camera-day asset copies
into the lake (frigate_alert_deliveries).
"""

from __future__ import annotations

import json
import logging
import queue
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import requests

from watershop_dagster import catalog
from watershop_dagster.config import FrigateAlertRule, SmtpConfig
from watershop_dagster.vocabulary import Role
from watershop_dagster.zones.config import Zone

log = logging.getLogger(__name__)

KNOWN_PERSON = "known_person"
LOITERING = "loitering"
ALERT_LOG = "_alerts"
RETRY_DELAYS_SECONDS = (0.5, 2.0, 5.0)  # back-off between the attempts of one channel
TICK_SECONDS = 0.2
STALE_SECONDS = 3600  # a track without a message for this long is forgotten


@dataclass
class Alert:
    alert_id: str
    rule: str
    kind: str
    camera: str
    event_id: str
    zone: str | None
    person_key: str | None
    role: str | None
    ts: float  # when it happened, Frigate's clock (frame_time, or entry + loitering_time)
    triggered_at: float  # our clock: receipt of the triggering message, or the tick that fired it
    channels: tuple[str, ...] = ()
    deliveries: dict[str, dict] = field(default_factory=dict)  # channel -> {ok, attempts, at, error}

    def payload(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("deliveries", "channels")}

    def text(self) -> str:
        who = self.person_key or f"person {self.event_id}"
        where = f" in {self.zone}" if self.zone else ""
        what = "loitering" if self.kind == LOITERING else "seen"
        return f"{who} {what} on {self.camera}{where} at {datetime.fromtimestamp(self.ts):%H:%M:%S}"


@dataclass
class _Track:
    camera: str
    person_key: str | None = None
    offset: float = 0.0  # our clock minus Frigate's, from the last message
    last_t: float = 0.0
    zones_since: dict[str, float] = field(default_factory=dict)


class AlertRules:
    """The rules' state over the message stream; `on_message` / `on_tick` return new alerts."""

    def __init__(self, rules: list[FrigateAlertRule], people: dict[str, str], zones: list[Zone]):
        self.rules = rules
        self.people = people
        self.loitering = {(z.camera, z.name): z.loitering_time for z in zones if z.loitering_time > 0}
        self.tracks: dict[str, _Track] = {}
        self.last_fired: dict[tuple[str, str], float] = {}
        self.fired_visits: set[tuple] = set()  # (rule, event) / (rule, event, zone, entry) already alerted
        self.lock = threading.Lock()

    def on_message(self, payload: str, received_at: float) -> list[Alert]:
        try:
            message = json.loads(payload)
            after = message["after"]
            kind, event_id, camera = message["type"], after["id"], after["camera"]
            t = float(after["frame_time"])
            zones = [z for z in after.get("current_zones") or [] if isinstance(z, str)]
        except (ValueError, KeyError, TypeError, AttributeError):
            return []  # quarantined later by the camera-day build; nothing to alert on
        if after.get("label", "person") != "person":
            return []
        label = after.get("sub_label")
        label = label[0] if isinstance(label, (list, tuple)) and label else label
        with self.lock:
            track = self.tracks.setdefault(event_id, _Track(camera))
            if isinstance(label, str) and label.lower() in self.people:
                track.person_key = self.people[label.lower()]
            if t >= track.last_t:  # an older message (late delivery) does not move the track back
                track.last_t, track.offset = t, received_at - t
                for zone in list(track.zones_since):
                    if zone not in zones:
                        del track.zones_since[zone]
                for zone in zones:
                    track.zones_since.setdefault(zone, t)
            alerts = self._known_person(event_id, track, zones, t, received_at)
            alerts += self._loitering(event_id, track, t, received_at)
            if kind == "end":
                del self.tracks[event_id]
        return alerts

    def on_tick(self, now: float) -> list[Alert]:
        """Loitering reached since the last message, on Frigate's clock estimated from ours."""
        with self.lock:
            for event_id in [e for e, track in self.tracks.items() if now - track.offset - track.last_t > STALE_SECONDS]:
                del self.tracks[event_id]  # its `end` never came
            return [alert for event_id, track in self.tracks.items()
                    for alert in self._loitering(event_id, track, now - track.offset, now)]

    def _role(self, person_key: str | None) -> str | None:
        return person_key.split("/", 1)[0] if person_key else None

    def _fire(self, rule: FrigateAlertRule, subject: str, triggered_at: float, **fields) -> Alert | None:
        last = self.last_fired.get((rule.name, subject))
        if last is not None and triggered_at - last < rule.cooldown_seconds:
            return None
        self.last_fired[(rule.name, subject)] = triggered_at
        alert_id = f"{rule.name}:{fields['event_id']}:{fields.get('zone') or ''}:{fields['ts']:.3f}"
        return Alert(alert_id=alert_id, rule=rule.name, kind=rule.kind, triggered_at=triggered_at,
                     channels=tuple(rule.channels), **fields)

    def _known_person(self, event_id: str, track: _Track, zones: list[str], t: float, received_at: float):
        role = self._role(track.person_key)
        alerts = []
        for rule in self.rules:
            if rule.kind != KNOWN_PERSON or role not in rule.roles:
                continue
            if rule.zones and not set(rule.zones) & set(zones):
                continue
            if (rule.name, event_id) in self.fired_visits:
                continue
            self.fired_visits.add((rule.name, event_id))
            alert = self._fire(rule, track.person_key, received_at, camera=track.camera, event_id=event_id,
                               zone=(sorted(set(rule.zones) & set(zones)) or [None])[0],
                               person_key=track.person_key, role=role, ts=t)
            if alert:
                alerts.append(alert)
        return alerts

    def _loitering(self, event_id: str, track: _Track, now_t: float, triggered_at: float):
        if self._role(track.person_key) == Role.STAFF:
            return []
        alerts = []
        for zone, since in track.zones_since.items():
            threshold = self.loitering.get((track.camera, zone))
            if threshold is None or now_t - since < threshold:
                continue
            for rule in self.rules:
                visit = (rule.name, event_id, zone, since)
                if rule.kind != LOITERING or (rule.zones and zone not in rule.zones) or visit in self.fired_visits:
                    continue
                self.fired_visits.add(visit)
                alert = self._fire(rule, track.person_key or f"{event_id}/{zone}", triggered_at,
                                   camera=track.camera, event_id=event_id, zone=zone, person_key=track.person_key,
                                   role=self._role(track.person_key), ts=since + threshold)
                if alert:
                    alerts.append(alert)
        return alerts


Sender = Callable[[Alert], None]


def webhook_sender(url: str, timeout: float) -> Sender:
    def send(alert: Alert) -> None:
        requests.post(url, json=alert.payload(), timeout=timeout).raise_for_status()
    return send


def mqtt_sender(publish: Callable, topic: str) -> Sender:
    """`publish`: a connected paho client's publish (thread-safe); QoS 1, waits for the broker's ack."""
    def send(alert: Alert) -> None:
        info = publish(f"{topic}/{alert.rule}", json.dumps(alert.payload()), qos=1)
        info.wait_for_publish(timeout=5)
        if not info.is_published():
            raise TimeoutError("broker did not acknowledge the alert")
    return send


def email_sender(smtp: SmtpConfig) -> Sender:
    def send(alert: Alert) -> None:
        message = EmailMessage()
        message["From"], message["To"] = smtp.sender, ", ".join(smtp.recipients)
        message["Subject"] = f"Watershop alert: {alert.text()}"
        message.set_content(json.dumps(alert.payload(), indent=2))
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)
    return send


def alert_deliveries(log_file: Path, camera: str) -> pl.DataFrame:
    """The delivery log's alerts of one camera (FRIGATE_ALERT_DELIVERIES rows); unreadable lines skipped."""
    rows = []
    for line in log_file.read_text().splitlines() if log_file.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("camera") != camera:
            continue
        deliveries = entry.get("deliveries") or {}
        rows.append({**{k: entry.get(k) for k in ("alert_id", "rule", "kind", "camera", "event_id", "zone",
                                                   "person_key", "role")},
                     "ts": int(float(entry["ts"]) * 1_000_000), "triggered_at": int(float(entry["triggered_at"]) * 1_000_000),
                     "delivered": bool(deliveries) and all(d.get("ok") for d in deliveries.values()),
                     "deliveries_json": json.dumps(deliveries)})
    schema = {name: (pl.Int64 if name in ("ts", "triggered_at") else dtype)
              for name, dtype in catalog.FRIGATE_ALERT_DELIVERIES.schema.items()}
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return frame.with_columns([pl.from_epoch(pl.col(c), time_unit="us").dt.replace_time_zone("UTC")
                               for c in ("ts", "triggered_at")])


def alert_log_file(landing_shop_dir: Path, day) -> Path:
    return Path(landing_shop_dir) / ALERT_LOG / f"{day.isoformat()}.ndjson"


class AlertService:
    """Rules + delivery thread + tick thread + delivery log. `handle` is called from paho's thread."""

    def __init__(self, rules: AlertRules, senders: dict[str, Sender], log_root: Path, tz: ZoneInfo,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS):
        self.rules, self.senders, self.log_root, self.tz = rules, senders, Path(log_root), tz
        self.retry_delays = retry_delays
        self.queue: queue.Queue[Alert | None] = queue.Queue()
        self.stopping = threading.Event()
        self.delivered: list[Alert] = []
        self._threads = [threading.Thread(target=self._deliver_loop, name="alert-delivery", daemon=True),
                         threading.Thread(target=self._tick_loop, name="alert-tick", daemon=True)]

    def start(self) -> AlertService:
        for thread in self._threads:
            thread.start()
        return self

    def handle(self, topic: str, payload: str, received_at: float) -> None:
        if topic.endswith("/events"):
            for alert in self.rules.on_message(payload, received_at):
                self.queue.put(alert)

    def _tick_loop(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            for alert in self.rules.on_tick(time.time()):
                self.queue.put(alert)

    def _deliver_loop(self) -> None:
        while (alert := self.queue.get()) is not None:
            self.deliver(alert)

    def deliver(self, alert: Alert) -> Alert:
        """Every channel of the alert, each retried with back-off until it succeeds or attempts run out."""
        for channel in alert.channels:
            sender = self.senders.get(channel)
            if sender is None:
                alert.deliveries[channel] = {"ok": False, "attempts": 0, "error": "channel not configured"}
                continue
            for attempt in range(len(self.retry_delays) + 1):
                try:
                    sender(alert)
                    alert.deliveries[channel] = {"ok": True, "attempts": attempt + 1, "at": time.time()}
                    break
                except Exception as exc:  # any failure of a channel is retried, then logged
                    alert.deliveries[channel] = {"ok": False, "attempts": attempt + 1, "error": str(exc)[:300]}
                    if attempt < len(self.retry_delays) and not self.stopping.is_set():
                        time.sleep(self.retry_delays[attempt])
        self._log(alert)
        self.delivered.append(alert)
        log.info("ALERT %s %s", alert.text(), {c: d["ok"] for c, d in alert.deliveries.items()})
        return alert

    def _log(self, alert: Alert) -> None:
        path = alert_log_file(self.log_root, datetime.fromtimestamp(alert.triggered_at, self.tz).date())
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(json.dumps({**alert.payload(), "deliveries": alert.deliveries}) + "\n")

    def stop(self) -> None:
        self.stopping.set()
        self.queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
