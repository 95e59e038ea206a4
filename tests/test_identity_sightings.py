"""Known people learn from confirmed sightings (identity.sightings): a staff member whose look
drifts away from their two reference photos stays staff, day after day; unclear sightings teach
nothing; the learned faces are capped, audited and erased with the person."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from tests.test_identity_registry import SHOP, make_config, visit, write_vision_day
from watershop_dagster import catalog, lake
from watershop_dagster.identity import pipeline as ident
from watershop_dagster.identity.known_people import KNOWN_PEOPLE_SCHEMA
from watershop_dagster.identity.sightings import (
    LEARNED_CAP,
    LEARNED_PREFIX,
    SIGHTINGS_SCHEMA,
    confirmed,
    with_learned,
)
from watershop_dagster.vision.faces import EMBEDDING_DIM

DAYS = [date(2024, 5, 1) + timedelta(days=k) for k in range(3)]
TIGHT = 0.1 / np.sqrt(2 * EMBEDDING_DIM)  # two faces of one look ~0.1 apart
STEP = 0.38  # a change of look: clearly the same person (< 0.45), two steps are not (0.76)


@pytest.fixture
def drifting_staff():
    """Photos 3-4: how the staff member was enrolled; 0-2: a new look one STEP away; 5-7: a second
    STEP further on (2 STEPs from the photos). 'C' is a customer far from all of it."""
    rng = np.random.default_rng(11)
    enrolled = rng.normal(size=EMBEDDING_DIM)
    enrolled *= 3 / np.linalg.norm(enrolled)
    direction = rng.normal(size=EMBEDDING_DIM)
    direction /= np.linalg.norm(direction)
    looks = [enrolled + STEP * direction, enrolled, enrolled + 2 * STEP * direction]
    faces = np.vstack([looks[0] + rng.normal(0, TIGHT, (3, EMBEDDING_DIM)),
                       looks[1] + rng.normal(0, TIGHT, (2, EMBEDDING_DIM)),
                       looks[2] + rng.normal(0, TIGHT, (3, EMBEDDING_DIM))]).astype(np.float32)
    customer = (enrolled - 1.5 * direction + rng.normal(0, TIGHT, (8, EMBEDDING_DIM))).astype(np.float32)
    return {"S": faces, "C": customer}


def known_staff(faces) -> pl.DataFrame:
    return pl.DataFrame([{"person_key": "staff/S", "role": "staff", "name": "S", "photo": f"{i}.jpg",
                          "embedding": faces["S"][i]} for i in (3, 4)], schema=KNOWN_PEOPLE_SCHEMA)


def roles(config, day) -> list[tuple]:
    return lake.read_dataset(config.lake_root, "face_identities", shop_id=SHOP, date=day).sort("start_utc").select(
        "role", "person_key").rows()


def test_a_staff_member_whose_look_drifts_stays_staff_through_learned_faces(drifting_staff, tmp_path):
    config, known = make_config(tmp_path / "learns"), known_staff(drifting_staff)
    plans = [[visit("S", [0, 1], 0), visit("C", [0, 1], 300)], [visit("S", [5, 6], 0)], [visit("S", [6, 7], 0)]]
    for day, plan in zip(DAYS, plans):
        write_vision_day(config, day, plan, drifting_staff)
        ident.build_customer_registry(config, SHOP, day, known=known)
    learned = lake.read_days(config.lake_root, catalog.KNOWN_PERSON_SIGHTINGS, SHOP)
    assert learned.filter(pl.col("date") == DAYS[0])["person_key"].to_list() == ["staff/S", "staff/S"]
    assert learned["distance"].max() < 0.45  # each row says what confirmed it
    for day in DAYS[1:]:
        assert roles(config, day) == [("staff", "staff/S")]

    # the same day 2 without day 1's sighting: two steps from the photos, a stranger
    alone = make_config(tmp_path / "alone")
    write_vision_day(alone, DAYS[1], plans[1], drifting_staff)
    ident.build_customer_registry(alone, SHOP, DAYS[1], known=known)
    assert roles(alone, DAYS[1]) == [("customer", None)]


def test_an_unclear_sighting_teaches_nothing(drifting_staff, tmp_path):
    """Within the ambiguous band of the photos: taken as staff (one-sided) but not learned from."""
    config = make_config(tmp_path, face_match_distance=0.4, face_ambiguous_margin=0.05)
    write_vision_day(config, DAYS[0], [visit("S", [0, 1], 0)], drifting_staff)
    ident.build_customer_registry(config, SHOP, DAYS[0], known=known_staff(drifting_staff))
    assert roles(config, DAYS[0]) == [("staff", "staff/S")]
    assert lake.read_dataset(config.lake_root, catalog.KNOWN_PERSON_SIGHTINGS, shop_id=SHOP, date=DAYS[0]).is_empty()


def test_confirmation_needs_a_clear_match_and_no_customer_near():
    assert confirmed(0.3, 0.9, 0.5, 0.05, 0.1)
    assert not confirmed(0.46, 0.9, 0.5, 0.05, 0.1)  # in the band
    assert not confirmed(0.3, 0.35, 0.5, 0.05, 0.1)  # a customer about as near


def test_learned_faces_are_capped_and_only_for_people_still_enrolled(drifting_staff):
    known = known_staff(drifting_staff)
    rng = np.random.default_rng(0)
    rows = [{"person_key": key, "role": "staff", "track_id": f"t{i}", "embedding_id": f"{key}-e{i:02d}",
             "camera": "counter", "ts_utc": None, "quality": 0.5 + i / 100, "distance": 0.3,
             "embedding": drifting_staff["S"][0] + rng.normal(0, 0.05, EMBEDDING_DIM).astype(np.float32)}
            for key in ("staff/S", "staff/gone") for i in range(20)]
    combined = with_learned(known, pl.DataFrame(rows, schema=SIGHTINGS_SCHEMA))
    learned = combined.filter(pl.col("photo").str.starts_with(LEARNED_PREFIX))
    assert learned.height == LEARNED_CAP and set(learned["person_key"]) == {"staff/S"}
    assert combined.filter(~pl.col("photo").str.starts_with(LEARNED_PREFIX)).equals(known)
    assert with_learned(known, pl.DataFrame(schema=SIGHTINGS_SCHEMA)).equals(known)
