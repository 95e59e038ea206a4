"""Frigate messages -> zone visits, loitering, footfall, tracks: against the generator's ground truth
(fresh seeds), and bad messages quarantined while the rest lands."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest
import yaml

from tests.frigate_helpers import CAMERAS, ZONES_YAML
from watershop_dagster.frigate.events import build_camera_day, sub_label_people
from watershop_dagster.frigate.landing import LandedMessage
from watershop_dagster.frigate.simulate import ScriptedPerson, person_messages, supermarket_replay
from watershop_dagster.zones.config import CameraSettings, resolve_zones

START = 1_717_236_000.0
PEOPLE = {"alice": "vip/alice", "sam": "staff/sam"}


def zones_of(camera: str):
    raw = yaml.safe_load(ZONES_YAML)["cameras"][camera]
    return resolve_zones(camera, CameraSettings.model_validate(raw))


def landed(payloads, topic="frigate/events"):
    return [LandedMessage(START + 100 + n, topic, payload, n + 1) for n, payload in enumerate(payloads)]


def match_visits(truth, visits: pl.DataFrame, tolerance: float = 1.0):
    """(recall, precision, worst dwell error) of lake visits against true ones (same object and zone,
    entry within `tolerance`)."""
    found = {(r["track_id"], r["zone"], r["enter_ts"].timestamp(), r["dwell_s"]) for r in visits.iter_rows(named=True)}
    matched, errors = 0, [0.0]
    unused = set(found)
    for visit in truth:
        hit = next((f for f in unused if f[0] == visit.event_id and f[1] == visit.zone
                    and abs(f[2] - visit.enter) <= tolerance), None)
        if hit:
            unused.discard(hit)
            matched += 1
            errors.append(abs(hit[3] - (visit.exit - visit.enter)))
    return matched / max(len(truth), 1), matched / max(len(found), 1), max(errors)


@pytest.mark.parametrize("seed", [101, 202, 303])
def test_visits_match_the_generated_truth_in_any_arrival_order(seed):
    replay = supermarket_replay(CAMERAS, START, people=60, seed=seed)
    messages = replay.messages[:]
    random.Random(seed).shuffle(messages)  # arrival order must not matter
    for camera in CAMERAS:
        mine = [m for m in messages if json.loads(m)["after"]["camera"] == camera]
        day = build_camera_day(landed(mine), camera, zones_of(camera), PEOPLE, "x.ndjson", (1280, 720))
        truth = [v for v in replay.visits if v.camera == camera]
        recall, precision, dwell_error = match_visits(truth, day.zone_visits)
        assert recall >= 0.95 and precision >= 0.95 and dwell_error <= 1.0, (recall, precision, dwell_error)
        assert day.quarantine.is_empty()
        assert day.person_tracks.height == len({json.loads(m)["after"]["id"] for m in mine})


def test_loitering_footfall_identity_and_staff():
    alice = ScriptedPerson("door", START, [("entrance", 2), (None, 2), ("promo", 45)], "Alice", "a1")
    staff = ScriptedPerson("door", START + 5, [("entrance", 2), (None, 2), ("promo", 60)], "Sam", "s1")
    rng = random.Random(1)
    payloads = person_messages(alice, rng)[0] + person_messages(staff, rng)[0]
    day = build_camera_day(landed(payloads), "door", zones_of("door"), PEOPLE, "x.ndjson", (1280, 720))
    tracks = {r["track_id"]: r for r in day.person_tracks.iter_rows(named=True)}
    assert tracks["a1"]["identity"] == "vip/alice" and tracks["s1"]["identity"] == "staff/sam"
    assert tracks["a1"]["duration_s"] == pytest.approx(49)
    loiter = day.loitering_events.row(0, named=True)
    assert day.loitering_events.height == 1 and loiter["track_id"] == "a1" and loiter["zone"] == "promo"
    assert loiter["alert_ts"].timestamp() == pytest.approx(START + 4 + 30)
    assert day.footfall.select("track_id", "direction").rows() == [("a1", "in")]  # staff not counted
    frames = day.frames()
    assert all(f["source"].to_list() == ["frigate"] * f.height for e, f in frames if "source" in f.columns)


def test_bad_messages_are_quarantined_and_the_rest_lands():
    person = ScriptedPerson("door", START, [(None, 1), ("promo", 40)], event_id="p1")
    good = person_messages(person, random.Random(2))[0]
    update = json.loads(good[1])
    early = json.loads(good[1])
    early["after"]["frame_time"] = START - 50
    late = json.loads(good[1])
    late["after"]["frame_time"] = START + 500
    no_zones = json.loads(good[1])
    del no_zones["after"]["current_zones"]
    other = json.loads(good[1])
    other["after"]["camera"] = "garage"
    bad = ["{oops", json.dumps(update), json.dumps(early), json.dumps(late), json.dumps(no_zones),
           json.dumps(other), json.dumps({"type": "moved", "after": update["after"]}), "[1, 2]"]
    messages = landed(good + bad) + [(99, "torn", "unreadable landing line")]
    day = build_camera_day(messages, "door", zones_of("door"), PEOPLE, "door/2024-06-01.ndjson", (1280, 720))
    reasons = sorted(day.quarantine["reason"].to_list())
    assert len(reasons) == len(bad) + 1
    assert any("duplicate" in r for r in reasons) and any("before the object's start" in r for r in reasons)
    assert any("after the object's end" in r for r in reasons) and "invalid JSON" in reasons
    assert any("current_zones" in r for r in reasons) and any("garage" in r for r in reasons)
    assert day.zone_visits.select("zone", "dwell_s").rows() == [("promo", pytest.approx(40))]


def test_sub_labels_map_to_known_people_folders(tmp_path):
    (tmp_path / "vip" / "Alice").mkdir(parents=True)
    (tmp_path / "staff" / "sam").mkdir(parents=True)
    assert sub_label_people(tmp_path, {"Bob K": "blocked/bob"}) == {
        "alice": "vip/Alice", "sam": "staff/sam", "bob k": "blocked/bob"}
