"""The Alert record every producer raises, and the cooldown that limits each rule per subject."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

KNOWN_PERSON = "known_person"
LOITERING = "loitering"
FALLING_OBJECT = "falling_object"

SOURCE_FRIGATE = "frigate"  # `frigate listen`, live
SOURCE_RECORDINGS = "recordings"  # evaluated over the lake after a shop-day or camera-day run
SOURCE_SHELF = "shelf"  # a Frigate segment of a shelf camera, near-live


@dataclass(frozen=True)
class Alert:
    alert_id: str  # stable: the same event evaluated twice gives the same id (never alerted twice)
    source: str
    rule: str
    kind: str
    shop_id: str
    camera: str
    event_id: str  # Frigate's tracked object, the visit, the loitering track or the fall
    subject: str  # the cooldown's unit per rule: the known person, else the track (or shelf zone)
    ts: float  # epoch seconds: when it happened
    triggered_at: float  # epoch seconds: when it was raised
    zone: str | None = None
    person_key: str | None = None
    role: str | None = None
    cooldown_s: float = 0.0
    channels: tuple[str, ...] = ()  # empty: every configured channel
    detail: dict = field(default_factory=dict)  # producer-specific payload fields

    def payload(self) -> dict:
        """The JSON a channel receives."""
        body = {k: v for k, v in asdict(self).items() if k not in ("channels", "detail", "cooldown_s", "subject")}
        return {**body, **self.detail}

    def text(self) -> str:
        who = self.person_key or (f"person {self.event_id}" if self.kind != FALLING_OBJECT else "an item")
        what = {LOITERING: "loitering", FALLING_OBJECT: "fell"}.get(self.kind, "seen")
        where = f" in {self.zone}" if self.zone else ""
        return f"{who} {what} on {self.camera}{where} at {datetime.fromtimestamp(self.ts, UTC):%H:%M:%S} UTC"

    def detail_json(self) -> str:
        return json.dumps(self.detail, default=str, sort_keys=True)


class Cooldown:
    """At most one alert per (rule, subject) within the rule's cooldown, on the alerts' own clock.

    `admit` is called in time order per subject (live: as alerts happen; batch: sorted by ts); a
    suppressed alert does not restart the cooldown."""

    def __init__(self, fired: dict[tuple[str, str], list[float]] | None = None):
        self.fired: dict[tuple[str, str], list[float]] = {k: sorted(v) for k, v in (fired or {}).items()}

    def admit(self, rule: str, subject: str, ts: float, cooldown_s: float) -> bool:
        times = self.fired.setdefault((rule, subject), [])
        if any(abs(ts - other) < cooldown_s for other in times):
            return False
        times.append(ts)
        if len(times) > 64:  # the recent ones are the ones that matter
            times.sort()
            del times[:-64]
        return True
