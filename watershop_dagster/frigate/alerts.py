"""Live alerts inside `watershop frigate listen`: rules over Frigate's messages, delivered in seconds.

`AlertRules` is pure state over the message stream (no I/O): a known person of a rule's roles is
seen (Frigate's sub_label), or a person's presence in a loitering zone reaches its loitering_time,
counted in the messages' own frame_time; a tick fires loitering without a new message (Frigate
publishes only on changes), with the clock offset between Frigate and us taken from the object's
last message. Each (rule, subject) fires at most once per cooldown (`alerts.model.Cooldown`); the
subject is the known person, else the tracked object. Staff never raise loitering alerts.

`AlertService` runs the rules on paho's thread and a tick thread and hands every alert to the
shared delivery layer (`alerts.delivery.LiveDelivery`: per-channel threads, back-off, the lake's
delivery log).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from watershop_dagster.alerts.delivery import LiveDelivery
from watershop_dagster.alerts.model import KNOWN_PERSON, LOITERING, SOURCE_FRIGATE, Alert, Cooldown
from watershop_dagster.config import AlertRule
from watershop_dagster.vocabulary import Role
from watershop_dagster.zones.config import Zone

LIVE_KINDS = (KNOWN_PERSON, LOITERING)
TICK_SECONDS = 0.2
STALE_SECONDS = 3600  # a track without a message for this long is forgotten


@dataclass
class _Track:
    camera: str
    person_key: str | None = None
    offset: float = 0.0  # our clock minus Frigate's, from the last message
    last_t: float = 0.0
    zones_since: dict[str, float] = field(default_factory=dict)


class AlertRules:
    """The rules' state over the message stream; `on_message` / `on_tick` return new alerts."""

    def __init__(self, shop_id: str, rules: list[AlertRule], people: dict[str, str], zones: list[Zone],
                 cooldown: Cooldown | None = None):
        self.shop_id = shop_id
        self.rules = [rule for rule in rules if rule.kind in LIVE_KINDS]
        self.people = people
        self.loitering = {(z.camera, z.name): z.loitering_time for z in zones if z.loitering_time > 0}
        self.tracks: dict[str, _Track] = {}
        self.cooldown = cooldown or Cooldown()
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

    def _fire(self, rule: AlertRule, subject: str, triggered_at: float, **fields) -> Alert | None:
        if not self.cooldown.admit(rule.name, subject, fields["ts"], rule.cooldown_seconds):
            return None
        alert_id = f"{rule.name}:{fields['event_id']}:{fields.get('zone') or ''}:{fields['ts']:.3f}"
        return Alert(alert_id=alert_id, source=SOURCE_FRIGATE, rule=rule.name, kind=rule.kind, shop_id=self.shop_id,
                     subject=subject, triggered_at=triggered_at, cooldown_s=rule.cooldown_seconds,
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


class AlertService:
    """Rules + tick thread + live delivery. `handle` is called from paho's thread."""

    def __init__(self, rules: AlertRules, delivery: LiveDelivery, pending=()):
        self.rules, self.delivery, self.pending = rules, delivery, pending
        self.stopping = threading.Event()
        self._tick = threading.Thread(target=self._tick_loop, name="alert-tick", daemon=True)

    def start(self) -> AlertService:
        self.delivery.start(self.pending)
        self._tick.start()
        return self

    def handle(self, topic: str, payload: str, received_at: float) -> None:
        if topic.endswith("/events"):
            for alert in self.rules.on_message(payload, received_at):
                self.delivery.submit(alert)

    def _tick_loop(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            for alert in self.rules.on_tick(time.time()):
                self.delivery.submit(alert)

    def stop(self) -> None:
        self.stopping.set()
        self._tick.join(timeout=10)
        self.delivery.stop()
