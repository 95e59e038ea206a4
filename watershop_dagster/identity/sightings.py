"""Known people learn from confirmed sightings: a staff member enrolled from two photos in winter
is still recognised in summer.

A day-person decided as a known person *clearly* — nearer than ``face_match_distance -
face_ambiguous_margin`` to their photos, and every customer at least ``face_separation``
farther — adds up to `SIGHTINGS_PER_DAY` diverse, good faces to the dataset
``known_person_sightings`` (partition = the day; each row names its track and the distance that
confirmed it: the audit). When matching, each known person is their reference photos plus at
most `LEARNED_CAP` learned faces from other days (`with_learned`, diverse and good, as customer
exemplars are chosen), so one odd day cannot take a person over. Only people still enrolled
learn; erasing a known person erases their sightings; retention expires them with the other
embeddings.
"""

from __future__ import annotations

import polars as pl

from watershop_dagster import catalog
from watershop_dagster.identity.clustering import matrix
from watershop_dagster.identity.matching import select_exemplars

SIGHTINGS_SCHEMA = catalog.KNOWN_PERSON_SIGHTINGS.schema
#: a clear sighting adds at most this many faces a day
SIGHTINGS_PER_DAY = 2
#: at most this many learned faces per known person are matched against, beside their photos
LEARNED_CAP = 6
#: `photo` of a learned face in the known-people frame (never a file name: those have no colon)
LEARNED_PREFIX = "learned:"


def with_learned(known: pl.DataFrame, sightings: pl.DataFrame, cap: int = LEARNED_CAP) -> pl.DataFrame:
    """Known people (KNOWN_PEOPLE_SCHEMA) plus at most `cap` learned faces per enrolled person from
    `sightings` (SIGHTINGS_SCHEMA rows of other days), ``photo`` = LEARNED_PREFIX + embedding_id."""
    if known.is_empty() or sightings.is_empty():
        return known
    enrolled = known.select("person_key", "role", "name").unique("person_key")
    parts = [known]
    rows = sightings.join(enrolled.select("person_key"), on="person_key").sort("person_key", "embedding_id")
    for (key,), group in rows.group_by("person_key", maintain_order=True):
        pick = select_exemplars(matrix(group["embedding"]), group["quality"].to_numpy(), cap,
                                tiebreak=group["embedding_id"].to_list())
        person = enrolled.filter(pl.col("person_key") == key).row(0, named=True)
        parts.append(group[pick].select(
            pl.lit(key).alias("person_key"), pl.lit(person["role"]).alias("role"), pl.lit(person["name"]).alias("name"),
            (pl.lit(LEARNED_PREFIX) + pl.col("embedding_id")).alias("photo"), "embedding",
        ).cast(dict(known.schema)))
    return pl.concat(parts)


def confirmed(known_distance: float, customer_distance: float, match_distance: float, margin: float,
              separation: float) -> bool:
    """A known person's match clear enough to learn from: below the ambiguous band, and no customer
    within `separation` of it."""
    return known_distance < match_distance - margin and customer_distance - known_distance >= separation


def sighting_rows(person_key: str, role: str, faces: pl.DataFrame, distance: float) -> pl.DataFrame:
    """The day's learned faces of one confirmed known person: up to SIGHTINGS_PER_DAY diverse good
    ones of `faces` (the day-person's inlier face_embeddings rows)."""
    if faces.is_empty():
        return pl.DataFrame(schema=SIGHTINGS_SCHEMA)
    faces = faces.sort("embedding_id")
    pick = select_exemplars(matrix(faces["embedding"]), faces["quality"].to_numpy(), SIGHTINGS_PER_DAY,
                            tiebreak=faces["embedding_id"].to_list())
    return faces[pick].select(
        pl.lit(person_key).alias("person_key"), pl.lit(role).alias("role"), "track_id", "embedding_id", "camera",
        "ts_utc", "quality", pl.lit(round(float(distance), 4)).alias("distance"), "embedding",
    ).cast(dict(SIGHTINGS_SCHEMA))
