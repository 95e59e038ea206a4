"""Who a person track is: the registry identity of a face seen on it.

A face detection of the camera-day (FACE_DETECTIONS) whose face track has an identity
(FACE_IDENTITIES: the registry customer id, or a known person's key for staff) is matched to the
person boxes of the nearest person-tracker frame (both pipelines read the same decoded frames, so
times agree to within a frame). The face votes for the person track whose box holds it in its upper
part (the head); a face held by two person boxes at once (people overlapping) votes for neither.
A person track takes the identity with a majority of its votes, for the whole track: every zone row
derived from it carries that identity. No face data: no identity.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

#: the head lies in this upper share of a person's box
UPPER_SHARE = 0.5
#: the blob box may start a little below the top of the head
HEAD_MARGIN = 0.05
#: a face box must lie at least this share inside the person box's upper part
MIN_FACE_INSIDE = 0.6
#: a face and a person frame this far apart in time are not the same frame
FRAME_TOLERANCE_S = 0.1

IDENTITY_LINKS = {"track_id": pl.Utf8, "identity": pl.Utf8, "faces": pl.UInt32}


def face_identities(face_detections: pl.DataFrame, identities: pl.DataFrame) -> pl.DataFrame:
    """Face detections (ts_utc, face box) with the identity of their face track; unidentified dropped.

    The identity is the registry customer id, else the known person's key (staff have no customer id)."""
    named = identities.select(
        "track_id", identity=pl.coalesce(pl.col("customer_id"), pl.col("person_key"))).drop_nulls("identity")
    return (face_detections.select("ts_utc", "track_id", "top", "right", "bottom", "left")
            .join(named.unique("track_id", keep="first"), on="track_id", how="inner")
            .drop("track_id"))


def person_identities(
    observations: pl.DataFrame, faces: pl.DataFrame, tolerance_s: float = FRAME_TOLERANCE_S,
) -> pl.DataFrame:
    """IDENTITY_LINKS: person track -> identity and the number of faces that voted for it.

    `observations`: PERSON_OBSERVATIONS of one camera(-day); `faces`: face_identities() of the same
    camera-day (ts_utc, top, right, bottom, left in pixels of the same frames, identity)."""
    if observations.is_empty() or faces.is_empty():
        return pl.DataFrame(schema=IDENTITY_LINKS)
    frames = observations.select(pl.col("ts").alias("frame_ts")).unique().sort("frame_ts")
    faces = (
        faces.with_row_index("face").sort("ts_utc")
        .join_asof(frames, left_on="ts_utc", right_on="frame_ts", strategy="nearest",
                   tolerance=timedelta(seconds=tolerance_s))
        .drop_nulls("frame_ts")
    )
    height = pl.col("y2") - pl.col("y1")
    head_top = pl.col("y1") - HEAD_MARGIN * height
    head_bottom = pl.col("y1") + UPPER_SHARE * height
    overlap_w = (pl.min_horizontal("right", "x2") - pl.max_horizontal("left", "x1")).clip(lower_bound=0)
    overlap_h = (pl.min_horizontal(pl.col("bottom"), head_bottom)
                 - pl.max_horizontal(pl.col("top"), head_top)).clip(lower_bound=0)
    face_area = (pl.col("right") - pl.col("left")) * (pl.col("bottom") - pl.col("top"))
    votes = (
        faces.join(observations.select("track_id", "ts", "x1", "y1", "x2", "y2"),
                   left_on="frame_ts", right_on="ts", how="inner")
        .filter((face_area > 0) & (overlap_w * overlap_h >= MIN_FACE_INSIDE * face_area))
        .filter(pl.len().over("face") == 1)  # held by one person box only
        .group_by("track_id", "identity").agg(faces=pl.len())
    )
    return (
        votes.with_columns(total=pl.col("faces").sum().over("track_id"))
        .filter(pl.col("faces") * 2 > pl.col("total"))
        .select([pl.col(c).cast(t) for c, t in IDENTITY_LINKS.items()])
        .sort("track_id")
    )


def with_identities(observations: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """`observations` with `identity` set on every row of each linked track (others keep theirs)."""
    if links.is_empty():
        return observations
    return (
        observations.join(links.select("track_id", pl.col("identity").alias("linked")), on="track_id", how="left")
        .with_columns(identity=pl.coalesce("linked", "identity"))
        .drop("linked")
    )
