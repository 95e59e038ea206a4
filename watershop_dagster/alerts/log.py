"""The delivery log: `alert_deliveries` in the lake, one row per alert and channel, partitioned by
the shop's local day of the alert and rewritten atomically under `locks.alert_log_lock`.

It is what makes delivery at most once after success (a channel whose row says delivered is never
sent again), what a later pass retries (failed rows whose next_attempt_at has come), what the
cooldown starts from after a restart, and what the dashboard lists (`recent_alerts`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.alerts.model import Alert
from watershop_dagster.config import WatershopConfig

DATASET = catalog.ALERT_DELIVERIES
DELIVERED, FAILED, GIVEN_UP, NOT_CONFIGURED = "delivered", "failed", "given_up", "not_configured"
COOLDOWN_LOOKBACK_DAYS = 1  # the previous day's alerts count for the cooldown too


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def log_day(alert: Alert, tz: ZoneInfo) -> date:
    """The log partition of an alert: the shop's local day it happened."""
    return datetime.fromtimestamp(alert.ts, tz).date()


def delivery_row(alert: Alert, channel: str, status: str, attempts: int, last_attempt_at: float | None,
                 next_attempt_at: float | None = None, error: str | None = None) -> dict:
    return {
        "alert_id": alert.alert_id, "source": alert.source, "rule": alert.rule, "kind": alert.kind,
        "camera": alert.camera, "event_id": alert.event_id, "zone": alert.zone, "subject": alert.subject,
        "person_key": alert.person_key, "role": alert.role, "ts": _utc(alert.ts),
        "triggered_at": _utc(alert.triggered_at), "cooldown_s": alert.cooldown_s, "detail_json": alert.detail_json(),
        "channel": channel, "status": status, "attempts": attempts, "last_attempt_at": _utc(last_attempt_at),
        "next_attempt_at": _utc(next_attempt_at), "error": error[:300] if error else None,
    }


def alert_from_row(row: dict, shop_id: str) -> Alert:
    """The alert a log row was written for (to retry it without its producer)."""
    return Alert(alert_id=row["alert_id"], source=row["source"], rule=row["rule"], kind=row["kind"], shop_id=shop_id,
                 camera=row["camera"], event_id=row["event_id"], subject=row["subject"], ts=row["ts"].timestamp(),
                 triggered_at=row["triggered_at"].timestamp(), zone=row["zone"], person_key=row["person_key"],
                 role=row["role"], cooldown_s=row["cooldown_s"] or 0.0, channels=(row["channel"],),
                 detail=json.loads(row["detail_json"] or "{}"))


def read_log(config: WatershopConfig, shop_id: str, days: Iterable[date] | None = None) -> pl.DataFrame:
    """The shop's log rows of `days` (None: every day), with a `date` column (the partition)."""
    if days is None:
        return lake.read_days(config.lake_root, DATASET, shop_id)
    frames = [lake.read_dataset(config.lake_root, DATASET, shop_id=shop_id, date=day).with_columns(
        pl.lit(day).alias("date")) for day in sorted(set(days))]
    return pl.concat(frames) if frames else pl.DataFrame(schema={**DATASET.schema, "date": pl.Date})


def cooldown_days(days: Iterable[date]) -> set[date]:
    """The log days whose alerts count for the cooldown of alerts of `days`."""
    return {day - timedelta(days=back) for day in days for back in range(COOLDOWN_LOOKBACK_DAYS + 1)}


def write_rows(config: WatershopConfig, shop_id: str, rows_by_day: dict[date, list[dict]]) -> None:
    """Upsert rows by (alert_id, channel) into their day's partition (of several rows for one, the
    last). The caller holds the log lock."""
    for day, rows in rows_by_day.items():
        if not rows:
            continue
        current = lake.read_dataset(config.lake_root, DATASET, shop_id=shop_id, date=day)
        new = pl.DataFrame(rows, schema=DATASET.schema, orient="row").unique(  # the latest outcome wins
            ["alert_id", "channel"], keep="last", maintain_order=True)
        kept = current.join(new.select("alert_id", "channel"), on=["alert_id", "channel"], how="anti")
        lake.write_dataset(pl.concat([kept, new]).sort("ts", "alert_id", "channel"), config.lake_root, DATASET,
                           shop_id=shop_id, date=day)


def recent_alerts(config: WatershopConfig, limit: int = 100) -> pl.DataFrame:
    """The latest `limit` deliveries of every shop, newest first (one row per alert and channel):
    time (when it happened), shop, camera, rule, kind, person, role, zone, channel, status, attempts, error."""
    columns = {"time": catalog.TS, "shop": pl.Utf8, "camera": pl.Utf8, "rule": pl.Utf8, "kind": pl.Utf8,
               "person": pl.Utf8, "role": pl.Utf8, "zone": pl.Utf8, "channel": pl.Utf8, "status": pl.Utf8,
               "attempts": pl.Int32, "error": pl.Utf8}
    frames = []
    for shop in config.shops:  # newest days first, only as many as the limit needs
        taken = 0
        for day, _folder in reversed(lake.dated_partitions(config.lake_root, DATASET, shop.id)):
            frame = lake.read_dataset(config.lake_root, DATASET, shop_id=shop.id, date=day)
            frames.append(frame.with_columns(pl.lit(shop.id).alias("shop")))
            taken += frame.height
            if taken >= limit:
                break
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return pl.DataFrame(schema=columns)
    rows = pl.concat(frames)
    return (rows.rename({"ts": "time", "person_key": "person"}).select(list(columns)).cast(columns)
            .sort(["time", "shop", "rule", "channel"], descending=[True, False, False, False]).head(limit))
