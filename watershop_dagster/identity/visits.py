"""Visits: each identified person's face tracks of a day, segmented into stays.

A person is a registry customer (customer_id) or a known person (person_key; staff included, with
role ``staff`` and no customer_id). Their tracks (face_identities rows), in time order, form one
visit while the gap between the end of what was seen so far and the next track's start is at most
`thresholds.visit_gap_seconds` (out of view for a few seconds — looking down, walking behind
someone — stays one visit); a longer gap starts a new visit. A visit never grows beyond
`max_visit_hours` (a longer stretch, e.g. staff followed all day, is cut into pieces of that
length), and visits shorter than `min_visit_seconds` are dropped (a face glimpsed in one frame).

``entry_utc``/``exit_utc`` are the first and last time the person's face was seen: cameras see
faces, not people, so a customer who turns round to leave has "exited" when the face is last seen
(in the synthetic footage that is ``counter_end_utc``, a few seconds before ``exit_utc``).

The configured gap is the only rule that joins tracks: no other evidence (same place, same
camera) bridges a longer gap, because a customer who leaves and comes back minutes later is two
visits. A still face the motion-gated vision step lost is looked for again where it was (every
`SamplerSettings.lost_face_interval_s`, well within the default gap), and a slice's first frame is
searched whole (a face still across a slice boundary), not bridged here.

``visit_id`` = ``v_`` + hash(shop, person, first track id, piece start): re-running gives the same
ids. ``confidence`` = the tracks' identity confidence (weighted by their embeddings) × an evidence
factor 1 - 0.5^(n_embeddings + 1).
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import polars as pl

from watershop_dagster import catalog
from watershop_dagster.catalog import TS
from watershop_dagster.config import Thresholds
from watershop_dagster.identity.ids import hid
from watershop_dagster.vocabulary import ALERT_ROLES

VISITS_SCHEMA = catalog.VISITS.schema
ALERTS_SCHEMA = catalog.ALERTS.schema
VISIT_TRACKS_SCHEMA = pl.Schema(
    {"visit_id": pl.Utf8, "track_id": pl.Utf8, "camera": pl.Utf8, "start_utc": TS, "end_utc": TS}
)


def _identity_key() -> pl.Expr:
    return pl.coalesce("customer_id", "person_key")


def segment_visits(
    identities: pl.DataFrame,
    thresholds: Thresholds,
    tz: ZoneInfo | str,
    shop_id: str,
) -> pl.DataFrame:
    """VISITS_SCHEMA rows from a day's face_identities (unidentified tracks are ignored)."""
    tz_name = tz if isinstance(tz, str) else tz.key
    rows = identities.filter(_identity_key().is_not_null()) if not identities.is_empty() else identities
    if rows.is_empty():
        return pl.DataFrame(schema=VISITS_SCHEMA)
    gap = timedelta(seconds=thresholds.visit_gap_seconds)
    cap = timedelta(hours=thresholds.max_visit_hours)
    rows = rows.with_columns(_identity_key().alias("_key")).sort("_key", "start_utc", "track_id")
    out: list[dict] = []

    def close(visit: dict | None) -> None:
        if visit is None:
            return
        duration = (visit["exit_utc"] - visit["entry_utc"]).total_seconds()
        if duration < thresholds.min_visit_seconds:
            return
        n_emb = visit["n_embeddings"]
        conf = visit["_conf_w"] / max(visit["_w"], 1e-9) * (1.0 - 0.5 ** (n_emb + 1))
        out.append({
            "visit_id": "v_" + hid("visit", shop_id, visit["_key"], visit["_first_track"], visit["entry_utc"].isoformat()),
            "customer_id": visit["customer_id"],
            "person_key": visit["person_key"],
            "role": visit["role"],
            "entry_utc": visit["entry_utc"],
            "exit_utc": visit["exit_utc"],
            "duration_s": duration,
            "cameras": ",".join(sorted(visit["_cameras"])),
            "n_tracks": visit["n_tracks"],
            "n_faces": visit["n_faces"],
            "n_embeddings": n_emb,
            "confidence": float(min(1.0, max(0.0, conf))),
            "ambiguous": visit["ambiguous"],
        })

    for (key,), group in rows.group_by("_key", maintain_order=True):
        visit: dict | None = None
        for track in group.iter_rows(named=True):
            start, end = track["start_utc"], max(track["end_utc"], track["start_utc"])
            pieces = []
            while end - start > cap:  # a single track longer than the cap (staff at the desk all day)
                pieces.append((start, start + cap))
                start = start + cap
            pieces.append((start, end))
            share = 1.0 / len(pieces)
            for p_start, p_end in pieces:
                extend = False
                if visit is not None and max(p_end, visit["exit_utc"]) - visit["entry_utc"] <= cap:
                    extend = p_start - visit["exit_utc"] <= gap
                if not extend:
                    close(visit)
                    visit = {
                        "_key": key, "_first_track": track["track_id"], "_cameras": set(), "_conf_w": 0.0, "_w": 0.0,
                        "customer_id": track["customer_id"], "person_key": track["person_key"], "role": track["role"],
                        "entry_utc": p_start, "exit_utc": p_end, "n_tracks": 0, "n_faces": 0, "n_embeddings": 0,
                        "ambiguous": False,
                    }
                visit["exit_utc"] = max(visit["exit_utc"], p_end)
                visit["_cameras"].add(track["camera"])
                visit["n_tracks"] += 1
                visit["n_faces"] += int(round((track["n_detections"] or 0) * share))
                n_emb = int(round((track["n_embeddings"] or 0) * share))
                visit["n_embeddings"] += n_emb
                weight = max(n_emb, 1)
                visit["_conf_w"] += weight * float(track["confidence"] or 0.0)
                visit["_w"] += weight
                visit["ambiguous"] = visit["ambiguous"] or bool(track["ambiguous"])
        close(visit)
    if not out:
        return pl.DataFrame(schema=VISITS_SCHEMA)
    visits = pl.DataFrame(out).with_columns(
        pl.col("entry_utc").dt.convert_time_zone(tz_name).dt.replace_time_zone(None).alias("entry_local"),
        pl.col("exit_utc").dt.convert_time_zone(tz_name).dt.replace_time_zone(None).alias("exit_local"),
    )
    return visits.select(list(VISITS_SCHEMA)).cast(dict(VISITS_SCHEMA)).sort("entry_utc", "visit_id")


def visit_tracks(visits: pl.DataFrame, identities: pl.DataFrame) -> pl.DataFrame:
    """(visit_id, track_id, camera, start_utc, end_utc): the tracks of the same person overlapping
    each visit's span — how visits are tied back to faces (alerts, linking, erasure)."""
    if visits.is_empty() or identities.is_empty():
        return pl.DataFrame(schema=VISIT_TRACKS_SCHEMA)
    v = visits.select("visit_id", pl.coalesce("customer_id", "person_key").alias("_key"), "entry_utc", "exit_utc")
    t = identities.filter(_identity_key().is_not_null()).select(
        _identity_key().alias("_key"), "track_id", "camera", "start_utc", "end_utc"
    )
    joined = v.join(t, on="_key").filter(
        (pl.col("start_utc") <= pl.col("exit_utc")) & (pl.col("end_utc") >= pl.col("entry_utc"))
    )
    return joined.select(list(VISIT_TRACKS_SCHEMA)).sort("visit_id", "start_utc", "track_id")


def visit_alerts(visits: pl.DataFrame, tracks: pl.DataFrame) -> pl.DataFrame:
    """ALERTS_SCHEMA: one row per visit of a VIP or blocked person (tracks: visit_tracks output)."""
    flagged = visits.filter(pl.col("role").is_in(ALERT_ROLES)) if not visits.is_empty() else visits
    if flagged.is_empty():
        return pl.DataFrame(schema=ALERTS_SCHEMA)
    first_camera = tracks.sort("start_utc", "track_id").group_by("visit_id", maintain_order=True).agg(
        pl.col("camera").first()
    )
    alerts = flagged.join(first_camera, on="visit_id", how="left").select(
        pl.col("visit_id").map_elements(lambda v: "a_" + hid("alert", v), return_dtype=pl.Utf8).alias("alert_id"),
        pl.coalesce("camera", pl.col("cameras").str.split(",").list.first()).alias("camera"),
        pl.col("entry_utc").alias("ts_utc"),
        "person_key",
        "role",
        "visit_id",
        "confidence",
    )
    return alerts.cast(dict(ALERTS_SCHEMA)).sort("ts_utc", "alert_id")


def visit_problems(visits: pl.DataFrame) -> list[str]:
    """Checks for the visits asset: exit >= entry, no two visits of one person overlapping, ids unique."""
    problems = []
    if visits.is_empty():
        return problems
    bad = visits.filter(pl.col("exit_utc") < pl.col("entry_utc")).height
    if bad:
        problems.append(f"{bad} visits exit before they enter")
    if visits["visit_id"].n_unique() != visits.height:
        problems.append("duplicate visit_id")
    ordered = visits.with_columns(pl.coalesce("customer_id", "person_key").alias("_key")).sort("_key", "entry_utc")
    overlaps = ordered.with_columns(pl.col("exit_utc").cum_max().shift(1).over("_key").alias("_prev_exit")).filter(
        pl.col("_prev_exit").is_not_null() & (pl.col("entry_utc") < pl.col("_prev_exit"))
    )
    if overlaps.height:
        problems.append(f"{overlaps.height} visits overlap an earlier visit of the same person")
    return problems
