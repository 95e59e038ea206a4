"""One camera-day of landed Frigate messages -> the behaviour datasets (source="frigate").

Frigate publishes a tracked object's state on `new`, on every zone change and better snapshot
(`update`) and when it is lost (`end`); it has no zone-exit event. So, per object, its messages are
put in the order of their own `frame_time` (arrival order does not matter) and:
- a zone visit opens at the first message listing the zone in `current_zones` and closes at the
  first later message that does not (left_zone) or at the object's end (`end_time` of the `end`
  message, else its last message: track_lost); visits of one zone apart by at most the exit
  debounce are one visit, as on the recordings path;
- loitering, footfall, occupancy and transitions follow from the visits with the zone analytics'
  own functions (zones.analytics), so both sources share one definition;
- `sub_label` (Frigate's face recognition or Double Take; a name, or [name, score]) maps to a known
  person's key role/name; staff are kept in tracks and visits but left out of the customer figures
  (footfall, loitering, occupancy, transitions).
Events fetched from the HTTP API (`pull`) carry no zone-change times: their visits are estimated
from the sampled path points and marked exit_reason="api_estimate".

Quarantined with a reason, the rest still lands: an unreadable line, invalid JSON, a message
naming another camera, missing or mistyped fields, a second message of one object at one
frame_time and type (duplicate), a message before the object's start or after its end.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from watershop_dagster import catalog
from watershop_dagster.frigate.landing import LandedMessage, read_landed
from watershop_dagster.vocabulary import Role
from watershop_dagster.zones import analytics
from watershop_dagster.zones.config import Zone
from watershop_dagster.zones.geometry import points_in_polygon

MESSAGE_TYPES = ("new", "update", "end")
API_TOPIC = "api/events"  # the topic `pull` lands HTTP API events under
EXIT_API_ESTIMATE = "api_estimate"
PERSON_LABEL = "person"
UNCONFIGURED_ZONE_KIND = "aisle"
_TYPE_ORDER = {kind: n for n, kind in enumerate(MESSAGE_TYPES)}


@dataclass
class _State:
    t: float
    kind: str
    zones: tuple[str, ...]
    box: tuple[float, float, float, float] | None  # x1, y1, x2, y2 pixels
    score: float | None
    sub_label: str | None
    end_time: float | None = None


@dataclass
class _Event:
    event_id: str
    start: float
    states: list[_State] = field(default_factory=list)
    api: dict | None = None  # the HTTP API's event, when it came from `pull`


@dataclass
class FrigateCameraDay:
    """The lake frames of one camera-day (without `source`; `frames()` adds it) and counts."""

    person_tracks: pl.DataFrame
    zone_visits: pl.DataFrame
    loitering_events: pl.DataFrame
    footfall: pl.DataFrame
    zone_occupancy: pl.DataFrame
    zone_transitions: pl.DataFrame
    quarantine: pl.DataFrame
    counts: dict[str, int]

    def frames(self) -> list[tuple[catalog.Dataset, pl.DataFrame]]:
        """(catalog entry, frame) to write, the behaviour outputs tagged source="frigate"."""
        tagged = [
            (catalog.PERSON_TRACKS, self.person_tracks), (catalog.ZONE_VISITS, self.zone_visits),
            (catalog.LOITERING_EVENTS, self.loitering_events), (catalog.FOOTFALL, self.footfall),
            (catalog.ZONE_OCCUPANCY, self.zone_occupancy), (catalog.ZONE_TRANSITIONS, self.zone_transitions),
        ]
        out = [(entry, frame.with_columns(source=pl.lit(catalog.SOURCE_FRIGATE))) for entry, frame in tagged]
        return out + [(catalog.FRIGATE_MESSAGES_QUARANTINE, self.quarantine)]


class _Rejected(ValueError):
    pass


def _sub_label(value) -> str | None:
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    return value if isinstance(value, str) and value else None


def _number(body: dict, key: str, required: bool = True) -> float | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise _Rejected(f"missing or non-numeric {key}")
    return float(value)


def _box(value) -> tuple[float, float, float, float] | None:
    if (isinstance(value, (list, tuple)) and len(value) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return tuple(float(v) for v in value)
    return None


def _mqtt_state(message: dict, camera: str) -> tuple[str, _State, float]:
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise _Rejected(f"unknown message type {kind!r}")
    after = message.get("after")
    if not isinstance(after, dict):
        raise _Rejected("missing `after`")
    if after.get("camera") != camera:
        raise _Rejected(f"unknown camera {after.get('camera')!r}")
    event_id = after.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise _Rejected("missing id")
    zones = after.get("current_zones")
    if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
        raise _Rejected("missing or malformed current_zones")
    start = _number(after, "start_time")
    end_time = _number(after, "end_time", required=kind == "end")
    score = after.get("score")
    state = _State(_number(after, "frame_time"), kind, tuple(zones), _box(after.get("box")),
                   float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                   _sub_label(after.get("sub_label")), end_time)
    return event_id, state, start


def _api_event(event_id: str, message: dict, frame_size: tuple[int, int] | None) -> _Event:
    start = float(message["start_time"])
    end = message.get("end_time")
    data = message.get("data") if isinstance(message.get("data"), dict) else {}
    box = _box(data.get("box"))
    if box and frame_size:  # the API's box: relative x, y, width, height
        w, h = frame_size
        box = (box[0] * w, box[1] * h, (box[0] + box[2]) * w, (box[1] + box[3]) * h)
    score = data.get("score")
    state = _State(start, "new", (), box if frame_size else None,
                   float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                   _sub_label(message.get("sub_label")), float(end) if isinstance(end, (int, float)) else None)
    return _Event(event_id, start, [state], api=message)


def _order_states(event: _Event, reject) -> None:
    """Sort by frame_time (then new < update < end); drop duplicates and messages outside the
    object's life, each through `reject(state, reason)`."""
    kept, seen, end_time = [], set(), None
    for state in sorted(event.states, key=lambda s: (s.t, _TYPE_ORDER[s.kind])):
        if (state.t, state.kind) in seen:
            reject(state, "duplicate message (one object, one frame_time and type)")
        elif state.t < event.start - 1e-6:
            reject(state, "frame_time before the object's start_time")
        elif end_time is not None:
            reject(state, "message after the object's end")
        else:
            kept.append(state)
            seen.add((state.t, state.kind))
            if state.kind == "end":
                end_time = state.end_time
    event.states = kept


def _visits_of(event: _Event, debounce: float) -> list[tuple[str, float, float, str]]:
    """(zone, enter, exit, exit_reason) of one object from its ordered states."""
    open_at: dict[str, float] = {}
    visits = []
    for state in event.states:
        for zone in state.zones:
            open_at.setdefault(zone, state.t)
        for zone in [z for z in open_at if z not in state.zones]:
            visits.append((zone, open_at.pop(zone), state.t, analytics.EXIT_LEFT_ZONE))
    last = event.states[-1]
    end = last.end_time if last.end_time is not None else last.t
    visits += [(zone, enter, max(end, enter), analytics.EXIT_TRACK_LOST) for zone, enter in open_at.items()]
    merged: list[tuple[str, float, float, str]] = []
    for visit in sorted(visits, key=lambda v: (v[0], v[1])):
        if merged and merged[-1][0] == visit[0] and visit[1] - merged[-1][2] <= debounce:
            zone, enter, _, _ = merged[-1]
            merged[-1] = (zone, enter, max(visit[2], merged[-1][2]), visit[3])
        else:
            merged.append(visit)
    return merged


def _path_points(api: dict) -> list[tuple[float, float, float]]:
    """(t, x, y) of an API event's `data.path_data` ([[x, y], t] relative points), sorted; malformed ones skipped."""
    data = api.get("data") if isinstance(api.get("data"), dict) else {}
    points = []
    for point in data.get("path_data") or []:
        try:
            (x, y), t = point
            points.append((float(t), float(x), float(y)))
        except (TypeError, ValueError):
            continue
    return sorted(points)


def _api_visits(event: _Event, zones: dict[str, Zone]) -> list[tuple[str, float, float, str]]:
    """Visits of an HTTP API event, always estimates: per entered zone, each run of path points
    inside it, from its first point to the next point outside (or the object's end); the object's
    whole life when no path point falls inside (unconfigured zone, or a crossing between samples)."""
    api = event.api
    end = float(api.get("end_time") or api["start_time"])
    points = _path_points(api)
    visits = []
    for name in api.get("zones") or []:
        zone = zones.get(name)
        if zone is None or not points:
            visits.append((name, event.start, end, EXIT_API_ESTIMATE))
            continue
        mask = points_in_polygon(np.array([p[1] for p in points]), np.array([p[2] for p in points]), zone.polygon)
        runs, enter = [], None
        for (t, _, _), hit in zip(points, mask):
            if hit and enter is None:
                enter = t
            elif not hit and enter is not None:
                runs.append((enter, t))
                enter = None
        if enter is not None:
            runs.append((enter, end))
        visits += [(name, a, b, EXIT_API_ESTIMATE) for a, b in runs or [(event.start, end)]]
    return visits


def _ts(seconds: float) -> int:
    return int(round(seconds * 1_000_000))


def build_camera_day(
    messages, camera: str, zones: list[Zone], people: dict[str, str], source_file: str,
    frame_size: tuple[int, int] | None = None, exit_debounce_seconds: float = analytics.DEFAULT_EXIT_DEBOUNCE_SECONDS,
) -> FrigateCameraDay:
    """The camera-day's datasets from its landed messages (`read_landed` items), `zones` of the
    camera, `people` mapping a lower-cased sub_label to a known person's role/name."""
    quarantine: list[dict] = []
    counts = defaultdict(int)
    events: dict[str, _Event] = {}
    api_events: dict[str, tuple[LandedMessage, dict]] = {}
    origin: dict[int, LandedMessage] = {}

    def reject(item, reason: str, payload_camera: str | None = camera):
        if isinstance(item, LandedMessage):
            quarantine.append({"camera": payload_camera, "source_file": source_file, "source_line": item.line,
                               "received_at": _ts(item.received_at), "topic": item.topic,
                               "payload": item.payload, "reason": reason})
        else:  # an unreadable landing line: (line, text, reason)
            quarantine.append({"camera": payload_camera, "source_file": source_file, "source_line": item[0],
                               "received_at": None, "topic": None, "payload": item[1], "reason": item[2]})
        counts["quarantined"] += 1

    for item in messages:
        counts["messages"] += 1
        if not isinstance(item, LandedMessage):
            reject(item, item[2])
            continue
        try:
            message = json.loads(item.payload)
        except ValueError:
            reject(item, "invalid JSON")
            continue
        if item.topic.endswith("/reviews"):
            counts["reviews"] += 1  # review items group events for Frigate's UI; kept in landing only
            continue
        try:
            if not isinstance(message, dict):
                raise _Rejected("not a JSON object")
            if item.topic == API_TOPIC:
                if message.get("camera") != camera:
                    raise _Rejected(f"unknown camera {message.get('camera')!r}")
                if message.get("label") != PERSON_LABEL:
                    counts["other_labels"] += 1
                    continue
                _number(message, "start_time")
                event_id = message.get("id")
                if not isinstance(event_id, str) or not event_id:
                    raise _Rejected("missing id")
                if event_id in api_events:  # a re-pull of a changed event: the later one wins
                    reject(api_events[event_id][0], "superseded by a later pull of the same event")
                api_events[event_id] = (item, message)
                continue
            if not item.topic.endswith("/events"):
                raise _Rejected(f"unexpected topic {item.topic!r}")
            if (message.get("after") or {}).get("label", PERSON_LABEL) != PERSON_LABEL:
                counts["other_labels"] += 1
                continue
            event_id, state, start = _mqtt_state(message, camera)
        except _Rejected as exc:
            reject(item, str(exc))
            continue
        event = events.setdefault(event_id, _Event(event_id, start))
        event.start = min(event.start, start)
        origin[id(state)] = item
        event.states.append(state)

    for event in events.values():
        _order_states(event, lambda state, reason: reject(origin[id(state)], reason))
    events = {k: e for k, e in events.items() if e.states}
    for event_id, (item, message) in api_events.items():
        if event_id in events:  # MQTT's zone-change times beat the API's samples
            counts["api_events_covered_by_mqtt"] += 1
            continue
        events[event_id] = _api_event(event_id, message, frame_size)

    by_name = {zone.name: zone for zone in zones}
    track_rows, visit_rows = [], []
    unknown_labels = set()
    for event in events.values():
        label = next((s.sub_label for s in reversed(event.states) if s.sub_label), None)
        identity = people.get(label.lower()) if label else None
        if label and identity is None:
            unknown_labels.add(label)
        last = event.states[-1]
        end = last.end_time if last.end_time is not None else last.t
        boxes = [s.box for s in event.states if s.box]
        scores = [s.score for s in event.states if s.score is not None]
        path = []
        if event.api is not None:
            path = [{"ts": _ts(t), "x": x, "y": y} for t, x, y in _path_points(event.api)]
        elif frame_size and boxes:
            w, h = frame_size
            path = [{"ts": _ts(s.t), "x": (s.box[0] + s.box[2]) / 2 / w, "y": s.box[3] / h}
                    for s in event.states if s.box]
        track_rows.append({
            "camera": camera, "track_id": event.event_id, "identity": identity,
            "start_ts": _ts(event.start), "end_ts": _ts(max(end, event.start)), "duration_s": max(end - event.start, 0.0),
            "observations": len(event.states), "mean_score": statistics.fmean(scores) if scores else None,
            "median_box_width": statistics.median(b[2] - b[0] for b in boxes) if boxes else None,
            "median_box_height": statistics.median(b[3] - b[1] for b in boxes) if boxes else None,
            "path": path,
        })
        visits = _api_visits(event, by_name) if event.api is not None else _visits_of(event, exit_debounce_seconds)
        for zone_name, enter, exit_, reason in visits:
            zone = by_name.get(zone_name)
            if zone is None:
                counts["visits_in_unconfigured_zones"] += 1
            visit_rows.append({
                "camera": camera, "zone": zone_name, "kind": zone.kind if zone else UNCONFIGURED_ZONE_KIND,
                "category": zone.category if zone else None, "track_id": event.event_id, "identity": identity,
                "enter_ts": _ts(enter), "exit_ts": _ts(exit_), "dwell_s": exit_ - enter, "exit_reason": reason,
            })
    counts["tracks"] = len(track_rows)
    counts["unknown_sub_labels"] = len(unknown_labels)

    tracks = _frame(track_rows, catalog.PERSON_TRACKS, ["start_ts", "end_ts"])
    if track_rows:
        tracks = tracks.with_columns(pl.col("path").list.eval(pl.struct(
            pl.from_epoch(pl.element().struct.field("ts"), time_unit="us").dt.replace_time_zone("UTC").alias("ts"),
            pl.element().struct.field("x"), pl.element().struct.field("y"))))
    tracks = tracks.sort(["camera", "start_ts", "track_id"])
    visits = _frame(visit_rows, catalog.ZONE_VISITS, ["enter_ts", "exit_ts"]).sort(
        ["camera", "zone", "track_id", "enter_ts"])
    customers = visits.filter(~pl.col("identity").fill_null("").str.starts_with(f"{Role.STAFF}/"))
    customer_tracks = tracks.filter(~pl.col("identity").fill_null("").str.starts_with(f"{Role.STAFF}/"))
    loitering = analytics.loitering_events(customers, zones)
    footfall = analytics.footfall(customers.filter(pl.col("exit_reason") != EXIT_API_ESTIMATE), customer_tracks,
                                  exit_debounce_seconds)
    counts.update(visits=visits.height, loitering=loitering.height, footfall=footfall.height)
    return FrigateCameraDay(
        person_tracks=tracks, zone_visits=visits, loitering_events=loitering, footfall=footfall,
        zone_occupancy=analytics.zone_occupancy(customers), zone_transitions=analytics.zone_transitions(customers),
        quarantine=_frame(quarantine, catalog.FRIGATE_MESSAGES_QUARANTINE, ["received_at"]),
        counts=dict(counts),
    )


def _frame(rows: list[dict], entry: catalog.Dataset, timestamps: list[str]) -> pl.DataFrame:
    """Rows as a frame of the dataset's columns (without `source`); timestamps from epoch microseconds."""
    schema = {name: dtype for name, dtype in entry.schema.items() if name != "source"}
    raw = {name: (pl.Int64 if name in timestamps else dtype) for name, dtype in schema.items()}
    if "path" in raw:
        raw["path"] = pl.List(pl.Struct({"ts": pl.Int64, "x": pl.Float64, "y": pl.Float64}))
    frame = pl.DataFrame(rows, schema=raw, orient="row") if rows else pl.DataFrame(schema=raw)
    frame = frame.with_columns([pl.from_epoch(pl.col(c), time_unit="us").dt.replace_time_zone("UTC") for c in timestamps])
    return frame if "path" in raw else frame.cast(schema)


def sub_label_people(known_people_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    """Lower-cased sub_label -> known person key (role/name): the folders <known_people>/<role>/<name>/
    (a sub_label equal to the folder name), then the config's explicit `frigate.sub_labels`."""
    people = {}
    for role in (Role.STAFF, Role.VIP, Role.BLOCKED):
        folder = Path(known_people_dir) / role
        for person in sorted(folder.iterdir()) if folder.is_dir() else []:
            if person.is_dir() and not person.name.startswith((".", "_")):
                people[person.name.lower()] = f"{role}/{person.name}"
    people.update({label.lower(): key for label, key in overrides.items()})
    return people


def build_landed_camera_day(path: Path, landing_root: Path, camera: str, zones: list[Zone], people: dict[str, str],
                            frame_size: tuple[int, int] | None = None,
                            exit_debounce_seconds: float = analytics.DEFAULT_EXIT_DEBOUNCE_SECONDS) -> FrigateCameraDay:
    """`build_camera_day` over one landing file (none: an empty camera-day)."""
    messages = read_landed(path) if path.exists() else []
    return build_camera_day(messages, camera, zones, people, str(path.relative_to(landing_root)), frame_size,
                            exit_debounce_seconds)
