"""Known people: one embedding per usable photo; bad photos reported, never fatal."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl

from tests.test_identity_registry import make_config
from tests.vision_helpers import face_distance
from watershop_dagster.identity.known_people import (
    AUGMENTATIONS,
    KNOWN_PEOPLE_SCHEMA,
    enrolment_report,
    load_known_people,
    scan_known_people,
)


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
    augmented = people.filter(pl.col("photo").str.contains("#", literal=True))
    people = people.filter(~pl.col("photo").str.contains("#", literal=True))
    assert sorted(people["person_key"].to_list()) == ["staff/John_Simm", "staff/John_Simm", "vip/obama"]
    # fewer than AUGMENT_BELOW photos: augmented views of each photo are enrolled too
    assert sorted(augmented.filter(pl.col("name") == "obama")["photo"].to_list()) == [
        f"vip/obama/a.jpg#{view}" for view in sorted(AUGMENTATIONS)]
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
    assert scan_known_people(root).people.filter(~pl.col("photo").str.contains("#", literal=True)).equals(people)
    # an augmented view stays close to its photo
    both = pl.concat([people, augmented])
    simm_photo = both.filter(pl.col("photo").str.starts_with("staff/John_Simm/")).sort("photo")
    v = np.stack(simm_photo["embedding"].to_list())
    assert face_distance(v[0], v[1:4]).max() < 0.5

    report = enrolment_report(both, 0.5).sort("person_key")
    assert report["photos"].to_list() == [2, 1]
    assert report["augmented"].to_list() == [True, True]
    assert report["embeddings"].to_list() == [8, 4]
    assert report["nearest_other"].to_list() == ["vip/obama", "staff/John_Simm"]
    assert report["nearest_other_distance"][0] > 0.5 and report["spread"][0] < 0.5
    assert report["spread"][1] is None and "only 1 usable photo" in report["warning"][1]
    assert load_known_people(make_config(tmp_path / "empty")).is_empty()
