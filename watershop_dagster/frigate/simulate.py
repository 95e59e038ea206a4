"""Messages Frigate would publish on `<prefix>/events` for scripted people, with their ground truth.

A person walks through a sequence of (zone or None, seconds) legs on one camera; Frigate publishes
`new` when the object is first confirmed, `update` on every zone change (and now and then for a
better snapshot), `end` when it is lost. Used by tests and benches to replay a known day.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from watershop_dagster.zones.analytics import DEFAULT_EXIT_DEBOUNCE_SECONDS

FRAME_WIDTH = 1280
FRAME_HEIGHT = 720


@dataclass
class ScriptedPerson:
    camera: str
    start: float  # epoch seconds
    legs: list[tuple[str | None, float]]  # (zone the person is in, or None; seconds there)
    sub_label: str | None = None
    event_id: str = ""
    snapshot_updates: int = 0  # extra updates without a zone change


@dataclass
class TruthVisit:
    camera: str
    event_id: str
    zone: str
    enter: float
    exit: float
    ended_inside: bool


@dataclass
class Replay:
    messages: list[str] = field(default_factory=list)  # payloads in publish order
    visits: list[TruthVisit] = field(default_factory=list)
    persons: list[ScriptedPerson] = field(default_factory=list)


def _state(person: ScriptedPerson, frame_time: float, zones: list[str], entered: list[str],
           end_time: float | None, rng: random.Random) -> dict:
    x = rng.uniform(100, FRAME_WIDTH - 200)
    y = rng.uniform(100, FRAME_HEIGHT - 300)
    box = [round(x), round(y), round(x + 110), round(y + 260)]
    sub_label = [person.sub_label, 0.93] if person.sub_label else None
    return {
        "id": person.event_id, "camera": person.camera, "frame_time": frame_time,
        "snapshot": {"frame_time": frame_time, "box": box, "area": 28600, "region": box, "score": 0.8,
                     "attributes": []},
        "label": "person", "sub_label": sub_label, "top_score": 0.86, "false_positive": False,
        "start_time": person.start, "end_time": end_time, "score": round(rng.uniform(0.7, 0.95), 3),
        "box": box, "area": 28600, "ratio": 0.42, "region": box, "current_zones": zones,
        "entered_zones": list(entered), "thumbnail": None, "has_snapshot": True, "has_clip": True,
        "stationary": False, "motionless_count": 0, "position_changes": 3, "attributes": {},
        "current_attributes": [],
    }


def person_messages(person: ScriptedPerson, rng: random.Random) -> tuple[list[str], list[TruthVisit]]:
    """The person's new/update/end payloads (in frame-time order) and their true zone visits."""
    messages, visits = [], []
    entered: list[str] = []
    before = None
    t = person.start
    for number, (zone, seconds) in enumerate(person.legs):
        zones = [zone] if zone else []
        if zone and zone not in entered:
            entered.append(zone)
        after = _state(person, round(t, 6), zones, entered, None, rng)
        kind = "new" if number == 0 else "update"
        messages.append(json.dumps({"type": kind, "before": before or after, "after": after}))
        before = after
        if zone:
            visits.append(TruthVisit(person.camera, person.event_id, zone, t, t + seconds,
                                     number == len(person.legs) - 1))
        for k in range(person.snapshot_updates):
            after = _state(person, round(t + seconds * (k + 1) / (person.snapshot_updates + 1), 6), zones,
                           entered, None, rng)
            messages.append(json.dumps({"type": "update", "before": before, "after": after}))
            before = after
        t += seconds
    end = _state(person, round(t, 6), before["current_zones"], entered, round(t, 6), rng)
    messages.append(json.dumps({"type": "end", "before": before, "after": end}))
    return messages, _debounced(visits)


def _debounced(visits: list[TruthVisit]) -> list[TruthVisit]:
    """Visits of one zone apart by at most the exit debounce are one visit (the product's definition)."""
    merged: list[TruthVisit] = []
    for visit in sorted(visits, key=lambda v: (v.zone, v.enter)):
        last = merged[-1] if merged else None
        if last and last.zone == visit.zone and visit.enter - last.exit <= DEFAULT_EXIT_DEBOUNCE_SECONDS:
            last.exit, last.ended_inside = visit.exit, visit.ended_inside
        else:
            merged.append(visit)
    return merged


def supermarket_replay(cameras: dict[str, list[str]], start: float, people: int, seed: int,
                       known: dict[str, float] | None = None) -> Replay:
    """A day's worth of `people` walking through the cameras' zones, merged in frame-time order.

    `known`: sub_label -> probability that a person carries it (Frigate's face recognition)."""
    rng = random.Random(seed)
    persons = []
    for n in range(people):
        camera = rng.choice(sorted(cameras))
        legs: list[tuple[str | None, float]] = [(None, rng.uniform(0.5, 3))]
        for _ in range(rng.randint(1, 4)):
            choices = [zone for zone in cameras[camera] if zone != legs[-1][0]]  # a new zone, or a gap first
            if not choices:
                legs.append((None, rng.uniform(1.5, 5)))
                choices = cameras[camera]
            legs.append((rng.choice(choices), rng.choice([rng.uniform(0.6, 3), rng.uniform(3, 90)])))
            if rng.random() < 0.5:
                legs.append((None, rng.uniform(1.5, 5)))
        sub_label = None
        for name, share in (known or {}).items():
            if rng.random() < share:
                sub_label = name
        begin = start + rng.uniform(0, 3600)
        persons.append(ScriptedPerson(camera, round(begin, 6), legs, sub_label, f"{begin:.6f}-{seed}x{n}",
                                      rng.randint(0, 2)))
    timed, replay = [], Replay()
    for person in persons:
        messages, visits = person_messages(person, rng)
        timed += [(json.loads(m)["after"]["frame_time"], m) for m in messages]
        replay.visits += visits
    replay.messages = [m for _, m in sorted(timed, key=lambda pair: pair[0])]
    replay.persons = persons
    return replay


def api_event(person: ScriptedPerson, zone_points: dict[str, tuple[float, float]],
              outside: tuple[float, float] = (0.5, 0.1), min_sampled_seconds: float = 1.0) -> dict:
    """The person as Frigate's HTTP API returns a finished event: entered `zones`, start/end, and
    `path_data` points ([[x, y], t], relative) where the object moved; a leg shorter than
    `min_sampled_seconds` gets no point (a quick crossing between two samples)."""
    path, zones, t = [], [], person.start
    for zone, seconds in person.legs:
        if zone and zone not in zones:
            zones.append(zone)
        if seconds >= min_sampled_seconds or not path:
            path.append([list(zone_points[zone] if zone else outside), round(t, 6)])
        t += seconds
    return {
        "id": person.event_id, "camera": person.camera, "label": "person",
        "sub_label": person.sub_label, "start_time": person.start, "end_time": round(t, 6),
        "false_positive": False, "zones": zones, "thumbnail": None, "has_clip": True, "has_snapshot": True,
        "retain_indefinitely": False, "plus_id": None, "model_hash": None, "detector_type": "edgetpu",
        "model_type": "ssd", "top_score": 0.86, "score": 0.86,
        "data": {"box": [0.4, 0.3, 0.09, 0.36], "region": [0.3, 0.2, 0.4, 0.6], "score": 0.86, "top_score": 0.86,
                 "attributes": [], "type": "object", "path_data": path},
    }
