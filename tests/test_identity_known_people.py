"""Known people: one embedding per usable photo; bad photos reported, never fatal."""

from __future__ import annotations

import shutil

import numpy as np

from tests.test_identity_registry import make_config
from tests.vision_helpers import face_distance
from watershop_dagster.identity.known_people import KNOWN_PEOPLE_SCHEMA, load_known_people, scan_known_people


def test_load_known_people(faces_dir, tmp_path):
    config = make_config(tmp_path)
    root = config.known_people_dir
    staff = root / "staff" / "John_Simm"
    staff.mkdir(parents=True)
    for photo in sorted((faces_dir / "John_Simm").glob("*.jpg"))[:2]:
        shutil.copy(photo, staff)
    vip = root / "vip" / "obama"
    vip.mkdir(parents=True)
    shutil.copy(faces_dir / "obama" / sorted(p.name for p in (faces_dir / "obama").iterdir())[0], vip / "a.jpg")
    shutil.copy(faces_dir / "_probe" / "dogs.jpg", vip / "dogs.jpg")  # no face
    shutil.copy(faces_dir / "_probe" / "obama_and_biden.jpg", vip / "two.jpg")  # two faces
    (vip / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "blocked").mkdir()
    (root / "friends" / "x").mkdir(parents=True)  # unknown role

    report: list = []
    people = load_known_people(config, report=report)

    assert people.schema == KNOWN_PEOPLE_SCHEMA
    assert sorted(people["person_key"].to_list()) == ["staff/John_Simm", "staff/John_Simm", "vip/obama"]
    assert set(people["role"]) == {"staff", "vip"}
    problems = dict(report)
    assert problems["vip/obama/dogs.jpg"] == "no face found"
    assert problems["vip/obama/two.jpg"].endswith("faces found (need exactly one)")
    assert problems["vip/obama/broken.jpg"].startswith("unreadable")
    assert "unknown role" in problems["friends"]
    vectors = np.stack(people["embedding"].to_list())
    simm = vectors[people["name"].to_numpy() == "John_Simm"]
    assert face_distance(simm[0], simm[1])[0, 0] < 0.5
    assert face_distance(simm[0], vectors[people["name"].to_numpy() == "obama"])[0, 0] > 0.6
    # cached: a second call does not recompute, and returns the same rows
    assert scan_known_people(root).people.equals(people)
    assert load_known_people(make_config(tmp_path / "empty")).is_empty()
