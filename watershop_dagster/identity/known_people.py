"""Reference photos of known people: ``<known_people>/<role>/<name>/*.jpg`` → one embedding per photo.

Roles are ``staff`` (never counted as customers), ``vip`` and ``blocked`` (an alert row is written
when they are seen). Every usable photo (exactly one face) gives one row: ``person_key``
(``role/name``), role, name, photo (path relative to the folder) and the 128-d embedding made
the same way as the vision pipeline's (dlib HOG box, 5-point alignment, one jitter). Photos with
no face or several faces, unreadable files and folders of unknown roles are reported, never
fatal. Results are cached in-process, keyed by the files' paths, sizes and modification times.

A person enrolled from fewer than `AUGMENT_BELOW` usable photos also gets embeddings of
augmented views of each photo (mirrored, darker, brighter: how the camera may see them on
another day), rows whose ``photo`` is ``<photo>#<view>``, so two reference photos still cover
some of a person's day-to-day variation. `enrolment_report` says per person how good the
enrolment is: photos used, their spread, and the nearest other known person.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from watershop_dagster.identity.sightings import LEARNED_PREFIX
from watershop_dagster.vision.faces import EMBEDDING_DIM, Detection, embed_faces, face_models
from watershop_dagster.vocabulary import KNOWN_ROLES

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: photos are shrunk to at most this many pixels on the long side before face detection
DETECT_MAX_SIDE = 900

#: people with fewer usable photos than this also get augmented views of every photo
AUGMENT_BELOW = 5
#: augmented views: name -> (mirror, brightness gain, gamma)
AUGMENTATIONS = {"mirror": (True, 1.0, 1.0), "dark": (False, 0.7, 1.15), "bright": (False, 1.25, 0.85)}

KNOWN_PEOPLE_SCHEMA = pl.Schema(
    {
        "person_key": pl.Utf8,
        "role": pl.Utf8,
        "name": pl.Utf8,
        "photo": pl.Utf8,
        "embedding": pl.Array(pl.Float32, EMBEDDING_DIM),
    }
)


@dataclass
class KnownPeople:
    people: pl.DataFrame  # KNOWN_PEOPLE_SCHEMA
    problems: list[tuple[str, str]] = field(default_factory=list)  # (photo or folder, reason)


def _read_rgb(path: Path) -> np.ndarray:
    from watershop_dagster.synthetic.gallery import read_rgb

    return read_rgb(path)


def photo_embedding(rgb: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """(embedding, None) for a photo with exactly one face; (None, reason) otherwise."""
    face_recognition = face_models()  # lazy: dlib models take ~1 s to load

    h, w = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(rgb[..., :3])
    boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=1, model="hog")
    if not boxes and max(rgb.shape[:2]) <= 500:
        boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=2, model="hog")
    if len(boxes) != 1:
        return None, "no face found" if not boxes else f"{len(boxes)} faces found (need exactly one)"
    top, right, bottom, left = boxes[0]
    vector = embed_faces(rgb, [Detection(top, right, bottom, left, 1.0)])[0]
    return vector.astype(np.float32), None


def augmented_view(rgb: np.ndarray, view: str) -> np.ndarray:
    """One of AUGMENTATIONS applied to an RGB photo."""
    mirror, gain, gamma = AUGMENTATIONS[view]
    out = rgb[:, ::-1] if mirror else rgb
    if gain != 1.0 or gamma != 1.0:
        out = np.clip((out.astype(np.float32) / 255.0) ** gamma * gain, 0.0, 1.0) * 255.0
    return np.ascontiguousarray(out.astype(np.uint8))


ENROLMENT_SCHEMA = pl.Schema({
    "person_key": pl.Utf8, "role": pl.Utf8, "photos": pl.Int32, "embeddings": pl.Int32, "augmented": pl.Boolean,
    "learned": pl.Int32,
    "spread": pl.Float64, "nearest_other": pl.Utf8, "nearest_other_distance": pl.Float64, "warning": pl.Utf8,
})


def enrolment_report(people: pl.DataFrame, match_distance: float) -> pl.DataFrame:
    """ENROLMENT_SCHEMA, one row per known person: usable photos, embeddings (with augmented
    views and learned faces), learned faces from confirmed sightings (identity.sightings), spread (median distance between the person's own photos: large = varied photos,
    good; None with one photo), the nearest other known person and the closest distance between
    their embeddings, and a warning when the enrolment is weak (one or two photos) or another
    known person is within `match_distance` (the two may be confused)."""
    if people.is_empty():
        return pl.DataFrame(schema=ENROLMENT_SCHEMA)
    from watershop_dagster.identity.clustering import distances, matrix

    people = people.sort("person_key", "photo")
    vectors = matrix(people["embedding"])
    keys = people["person_key"].to_numpy()
    learned = people["photo"].str.starts_with(LEARNED_PREFIX).to_numpy()
    original = ~people["photo"].str.contains("#", literal=True).to_numpy() & ~learned
    d = distances(vectors, vectors)
    rows = []
    for key in sorted(set(keys)):
        mine = keys == key
        own = d[np.ix_(mine & original, mine & original)]
        n_photos = int((mine & original).sum())
        spread = float(np.median(own[np.triu_indices(n_photos, 1)])) if n_photos > 1 else None
        nearest, nearest_d = None, None
        if (~mine).any():
            cross = d[np.ix_(mine, ~mine)].min(axis=0)
            j = int(np.argmin(cross))
            nearest, nearest_d = str(keys[~mine][j]), float(cross[j])
        warnings = []
        if n_photos < 3:
            warnings.append(f"only {n_photos} usable photo(s): add more, from different days and angles")
        if nearest_d is not None and nearest_d < match_distance:
            warnings.append(f"closer than the match distance to {nearest}: the two may be confused")
        rows.append({
            "person_key": key, "role": str(people.filter(pl.col("person_key") == key)["role"][0]),
            "photos": n_photos, "embeddings": int(mine.sum()), "augmented": bool((mine & ~original & ~learned).any()),
            "learned": int((mine & learned).sum()),
            "spread": spread, "nearest_other": nearest, "nearest_other_distance": nearest_d,
            "warning": "; ".join(warnings) or None,
        })
    return pl.DataFrame(rows, schema=ENROLMENT_SCHEMA)


def _photos(folder: Path) -> tuple[list[tuple[str, str, Path]], list[tuple[str, str]]]:
    photos, problems = [], []
    if not folder.is_dir():
        return photos, problems
    for role_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if role_dir.name not in KNOWN_ROLES:
            problems.append((role_dir.name, f"unknown role folder (expected one of {list(KNOWN_ROLES)})"))
            continue
        for person_dir in sorted(p for p in role_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            files = sorted(
                p for p in person_dir.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not files:
                problems.append((f"{role_dir.name}/{person_dir.name}", "no photos"))
            photos += [(role_dir.name, person_dir.name, f) for f in files]
    return photos, problems


_CACHE: dict[tuple, KnownPeople] = {}
_CACHE_LOCK = threading.Lock()


def scan_known_people(folder: Path) -> KnownPeople:
    """Embed every photo under `folder` (cached by file stats)."""
    folder = Path(folder)
    photos, problems = _photos(folder)
    signature = [str(folder)]
    for role, name, path in photos:
        try:
            stat = path.stat()
            signature.append((str(path), stat.st_size, stat.st_mtime_ns))
        except OSError:
            signature.append((str(path), -1, -1))
    key = tuple(signature)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return KnownPeople(hit.people.clone(), list(hit.problems))
    rows: dict[str, list] = {k: [] for k in KNOWN_PEOPLE_SCHEMA}
    usable: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    for role, name, path in photos:
        relative = str(path.relative_to(folder))
        try:
            rgb = _read_rgb(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable image is reported, not fatal
            problems.append((relative, f"unreadable: {exc}"))
            continue
        vector, reason = photo_embedding(rgb)
        if vector is None:
            problems.append((relative, reason))
            continue
        usable.setdefault((role, name), []).append((relative, rgb))
        for column, value in (("person_key", f"{role}/{name}"), ("role", role), ("name", name),
                              ("photo", relative), ("embedding", vector)):
            rows[column].append(value)
    for (role, name), shots in usable.items():
        if len(shots) >= AUGMENT_BELOW:
            continue
        for relative, rgb in shots:
            for view in AUGMENTATIONS:
                vector, _ = photo_embedding(augmented_view(rgb, view))
                if vector is None:
                    continue
                for column, value in (("person_key", f"{role}/{name}"), ("role", role), ("name", name),
                                      ("photo", f"{relative}#{view}"), ("embedding", vector)):
                    rows[column].append(value)
    vectors = np.asarray(rows.pop("embedding"), np.float32).reshape(-1, EMBEDDING_DIM)
    people = pl.DataFrame(rows | {"embedding": vectors}, schema=KNOWN_PEOPLE_SCHEMA)
    result = KnownPeople(people, problems)
    with _CACHE_LOCK:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = result
    return KnownPeople(people.clone(), list(problems))


def load_known_people(config, *, report: list | None = None) -> pl.DataFrame:
    """Known people's photo embeddings (KNOWN_PEOPLE_SCHEMA) from `config.known_people_dir`.

    Photos without exactly one face are logged as warnings and, when `report` is a list, appended
    to it as (photo, reason); they never raise.
    """
    scanned = scan_known_people(config.known_people_dir)
    for where, reason in scanned.problems:
        log.warning("known_people: %s: %s", where, reason)
    if report is not None:
        report.extend(scanned.problems)
    return scanned.people
