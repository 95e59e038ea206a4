"""A face seen on a person track gives the whole track (and its zone rows) the face's identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from watershop_dagster import catalog
from watershop_dagster.behaviour.identities import face_identities, person_identities, with_identities
from watershop_dagster.zones import Zone, analyse_observations
from watershop_dagster.zones.schemas import PERSON_OBSERVATIONS

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
FPS = 15


def _ts(frame: int) -> datetime:
    return T0 + timedelta(microseconds=round(frame / FPS * 1e6))


def _observations(tracks: dict[str, tuple[float, float, float, float]], frames: range) -> pl.DataFrame:
    """Person boxes that stand still (x1, y1, x2, y2 in px of a 1280x720 frame) on every frame."""
    rows = [{"camera": "aisle", "track_id": track, "ts": _ts(f), "x1": box[0], "y1": box[1], "x2": box[2],
             "y2": box[3], "frame_width": 1280, "frame_height": 720, "identity": None, "score": 0.9}
            for f in frames for track, box in tracks.items()]
    return pl.DataFrame(rows, schema=PERSON_OBSERVATIONS)


def _detections(faces: list[tuple[int, str, tuple[int, int, int, int]]], jitter_s: float = 0.0) -> pl.DataFrame:
    """(frame, face track, (left, top, right, bottom)) -> FACE_DETECTIONS rows."""
    rows = [{"detection_id": f"d{i}", "camera": "aisle", "ts_utc": _ts(frame) + timedelta(seconds=jitter_s),
             "track_id": track, "left": box[0], "top": box[1], "right": box[2], "bottom": box[3]}
            for i, (frame, track, box) in enumerate(faces)]
    return pl.DataFrame(rows).select(
        [pl.col(c).cast(t) for c, t in catalog.FACE_DETECTIONS.schema.items() if c in rows[0]])


def _identities(rows: list[tuple[str, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"track_id": pl.Utf8, "customer_id": pl.Utf8, "person_key": pl.Utf8},
                        orient="row")


PERSON_A = (100.0, 200.0, 200.0, 500.0)  # head at the top: y 200-350 is the upper half
PERSON_B = (600.0, 200.0, 700.0, 500.0)
FACE_ON_A = (130, 210, 170, 250)
FACE_ON_B = (630, 210, 670, 250)


def test_a_face_in_the_upper_part_of_a_person_box_names_the_whole_track():
    obs = _observations({"p1": PERSON_A, "p2": PERSON_B}, range(30))
    faces = face_identities(_detections([(5, "f1", FACE_ON_A), (10, "f1", FACE_ON_A)], jitter_s=0.02),
                            _identities([("f1", "C-7", None)]))
    links = person_identities(obs, faces)
    assert links.select("track_id", "identity", "faces").rows() == [("p1", "C-7", 2)]
    named = with_identities(obs, links)
    assert set(named.filter(pl.col("track_id") == "p1")["identity"]) == {"C-7"}
    assert named.filter(pl.col("track_id") == "p2")["identity"].null_count() == 30


def test_staff_take_their_known_person_key():
    obs = _observations({"p1": PERSON_A}, range(10))
    faces = face_identities(_detections([(3, "f1", FACE_ON_A)]), _identities([("f1", None, "staff/asha")]))
    assert person_identities(obs, faces)["identity"].to_list() == ["staff/asha"]


def test_no_identity_without_a_match():
    obs = _observations({"p1": PERSON_A}, range(10))
    identities = _identities([("f1", "C-7", None), ("f2", None, None)])
    feet = (130, 450, 170, 490)  # a "face" in the lower part of the box
    cases = {
        "face in the lower part": _detections([(3, "f1", feet)]),
        "face outside every box": _detections([(3, "f1", (900, 210, 940, 250))]),
        "face at another time": _detections([(3, "f1", FACE_ON_A)], jitter_s=30.0),
        "unidentified face track": _detections([(3, "f2", FACE_ON_A)]),
        "face track without identity row": _detections([(3, "f9", FACE_ON_A)]),
    }
    for case, detections in cases.items():
        assert person_identities(obs, face_identities(detections, identities)).is_empty(), case


def test_missing_face_data_leaves_identity_null():
    obs = _observations({"p1": PERSON_A}, range(10))
    empty_faces = face_identities(pl.DataFrame(schema=catalog.FACE_DETECTIONS.schema),
                                  pl.DataFrame(schema=catalog.FACE_IDENTITIES.schema))
    links = person_identities(obs, empty_faces)
    assert links.is_empty()
    assert with_identities(obs, links)["identity"].null_count() == obs.height


def test_a_face_inside_two_overlapping_person_boxes_votes_for_neither():
    obs = _observations({"p1": PERSON_A, "p2": (110.0, 205.0, 210.0, 505.0)}, range(10))
    faces = face_identities(_detections([(3, "f1", FACE_ON_A)]), _identities([("f1", "C-7", None)]))
    assert person_identities(obs, faces).is_empty()


def test_the_majority_identity_wins_and_a_tie_names_nobody():
    obs = _observations({"p1": PERSON_A}, range(30))
    identities = _identities([("f1", "C-7", None), ("f2", "C-8", None)])
    majority = _detections([(3, "f1", FACE_ON_A), (6, "f1", FACE_ON_A), (9, "f2", FACE_ON_A)])
    assert person_identities(obs, face_identities(majority, identities))["identity"].to_list() == ["C-7"]
    tie = _detections([(3, "f1", FACE_ON_A), (9, "f2", FACE_ON_A)])
    assert person_identities(obs, face_identities(tie, identities)).is_empty()


def test_zone_rows_of_a_named_track_carry_its_identity():
    walk = [{"camera": "aisle", "track_id": "p1", "ts": _ts(f), "x1": 100.0 + 10 * f, "y1": 200.0,
             "x2": 200.0 + 10 * f, "y2": 500.0, "frame_width": 1280, "frame_height": 720, "identity": None,
             "score": 0.9} for f in range(60)]
    obs = pl.DataFrame(walk, schema=PERSON_OBSERVATIONS)
    faces = face_identities(_detections([(2, "f1", (130 + 20, 210, 170 + 20, 250))]),
                            _identities([("f1", "C-7", None)]))
    zone = Zone("aisle", "promo", "promo", None, 3, 1.0, np.array([[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]))
    analytics = analyse_observations(with_identities(obs, person_identities(obs, faces)), [zone])
    assert analytics.tracks["identity"].to_list() == ["C-7"]
    assert analytics.visits.height == 1 and analytics.visits["identity"].to_list() == ["C-7"]
    assert analytics.loitering["identity"].to_list() == ["C-7"]
