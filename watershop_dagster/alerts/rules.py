"""The alert rules evaluated over the lake after a run of the recordings path (and, for falls, of
the shelf segments): pure functions from a partition's rows to Alerts, and `partition_alerts`, which
reads the partition a materialization names.

A Frigate-fed shop gets its known-person and loitering alerts live from `frigate listen`; here
they are evaluated only for recordings-only shops. Falls are evaluated for every shop: a fall
already alerted near-live has the same alert id, so it is never sent twice."""

from __future__ import annotations

from datetime import date

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.alerts.model import (
    FALLING_OBJECT,
    KNOWN_PERSON,
    LOITERING,
    SOURCE_RECORDINGS,
    Alert,
)
from watershop_dagster.config import AlertRule, WatershopConfig
from watershop_dagster.vocabulary import Role

FALL_DETAIL = ("landing_utc", "drop_height_px", "confidence", "landed", "still")


def _rules(rules: list[AlertRule], kind: str) -> list[AlertRule]:
    return [rule for rule in rules if rule.kind == kind]


def _jsonable(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def known_person_alerts(rows: pl.DataFrame, rules: list[AlertRule], shop_id: str, now: float) -> list[Alert]:
    """A vip/blocked person's visit (`alerts` rows of the identity step) for each rule of its role.
    Rules limited to zones are Frigate's (recordings know no zone of a face)."""
    out = []
    for rule in _rules(rules, KNOWN_PERSON):
        if rule.zones:
            continue
        for row in rows.filter(pl.col("role").is_in(rule.roles)).iter_rows(named=True):
            out.append(Alert(
                alert_id=f"{rule.name}:{row['alert_id']}", source=SOURCE_RECORDINGS, rule=rule.name, kind=rule.kind,
                shop_id=shop_id, camera=row["camera"], event_id=row["visit_id"], subject=row["person_key"],
                ts=row["ts_utc"].timestamp(), triggered_at=now, person_key=row["person_key"], role=row["role"],
                cooldown_s=rule.cooldown_seconds, channels=tuple(rule.channels),
                detail={"visit_id": row["visit_id"], "confidence": row["confidence"]}))
    return out


def loitering_alerts(rows: pl.DataFrame, rules: list[AlertRule], shop_id: str, now: float) -> list[Alert]:
    """A person (never staff) whose presence in a zone reached its loitering_time. The cooldown counts
    per known person, else per track and zone: a registry customer's id never enters the log."""
    out = []
    for rule in _rules(rules, LOITERING):
        for row in rows.iter_rows(named=True):
            identity = row["identity"]
            role = identity.split("/", 1)[0] if identity and "/" in identity else None
            if role == Role.STAFF or (rule.zones and row["zone"] not in rule.zones):
                continue
            out.append(Alert(
                alert_id=f"{rule.name}:{row['camera']}:{row['track_id']}:{row['zone']}:{row['start_ts'].isoformat()}",
                source=SOURCE_RECORDINGS, rule=rule.name, kind=rule.kind, shop_id=shop_id, camera=row["camera"],
                event_id=row["track_id"], subject=identity if role else f"{row['camera']}/{row['track_id']}/{row['zone']}",
                ts=row["alert_ts"].timestamp(), triggered_at=now, zone=row["zone"],
                person_key=identity if role else None, role=role, cooldown_s=rule.cooldown_seconds,
                channels=tuple(rule.channels),
                detail={"start_ts": row["start_ts"].isoformat(), "dwell_s": row["dwell_s"],
                        "loitering_time_s": row["loitering_time_s"]}))
    return out


def falling_object_alerts(events: pl.DataFrame, camera: str, rules: list[AlertRule], shop_id: str, now: float,
                          source: str) -> list[Alert]:
    """An item fell in a shelf zone; the cooldown counts per camera and zone."""
    out = []
    for rule in _rules(rules, FALLING_OBJECT):
        for row in events.iter_rows(named=True):
            if rule.zones and row["zone"] not in rule.zones:
                continue
            out.append(Alert(
                alert_id=f"{rule.name}:{camera}:{row['event_id']}", source=source, rule=rule.name, kind=rule.kind,
                shop_id=shop_id, camera=camera, event_id=row["event_id"], subject=f"{camera}/{row['zone']}",
                ts=row["release_utc"].timestamp(), triggered_at=now, zone=row["zone"],
                cooldown_s=rule.cooldown_seconds, channels=tuple(rule.channels),
                detail={"release_utc": row["release_utc"].isoformat(),
                        **{name: _jsonable(row[name]) for name in FALL_DETAIL if name in row}}))
    return out


def recordings_only(config: WatershopConfig, shop_id: str) -> bool:
    """No Frigate feeds the shop live (its known-person and loitering alerts are evaluated here)."""
    return config.frigate is None or config.frigate_shop.id != shop_id


def partition_alerts(config: WatershopConfig, dataset: str, shop_id: str, day: date, camera: str | None,
                     now: float) -> list[Alert]:
    """The alerts of one materialized partition of `alerts` (shop-day), `loitering_events` or
    `falling_object_events` (camera-day)."""
    rules, lake_root = config.alerts.rules, config.lake_root
    if dataset == catalog.FALLING_OBJECT_EVENTS.name:
        events = lake.read_dataset(lake_root, catalog.FALLING_OBJECT_EVENTS, shop_id=shop_id, date=day, camera=camera)
        return falling_object_alerts(events, camera, rules, shop_id, now, SOURCE_RECORDINGS)
    if not recordings_only(config, shop_id):
        return []
    if dataset == catalog.ALERTS.name:
        return known_person_alerts(lake.read_dataset(lake_root, catalog.ALERTS, shop_id=shop_id, date=day),
                                   rules, shop_id, now)
    if dataset == catalog.LOITERING_EVENTS.name:
        rows = lake.read_dataset(lake_root, catalog.LOITERING_EVENTS, shop_id=shop_id, date=day, camera=camera)
        return loitering_alerts(rows.filter(pl.col("source") == catalog.SOURCE_WATERSHOP), rules, shop_id, now)
    raise ValueError(f"no alert rules read {dataset!r}")
