"""Which falls raise an alert: at most one per zone within the cooldown, never one twice.

Pure: the caller reads the camera-day's alert log (`falling_object_alerts`), delivers what this
returns through the alert channel and appends it to the log, holding `locks.shelf_alert_lock`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from watershop_dagster import catalog

ALERTS_SCHEMA = catalog.FALLING_OBJECT_ALERTS.schema


def alerts_due(events: pl.DataFrame, sent: pl.DataFrame, cooldown_s: float) -> pl.DataFrame:
    """The events of one camera (in release order) to alert about: not alerted yet, and no alert of
    their zone released within `cooldown_s` of them (earlier alerts, or ones picked here)."""
    last: dict[str, datetime] = {}
    for row in sent.iter_rows(named=True):
        last[row["zone"]] = max(last.get(row["zone"], row["release_utc"]), row["release_utc"])
    done = set(sent["event_id"].to_list())
    cooldown = timedelta(seconds=cooldown_s)
    keep = []
    for row in events.sort("release_utc").iter_rows(named=True):
        key = row["zone"]
        if row["event_id"] in done:
            continue
        previous = last.get(key)
        if previous is not None and abs(row["release_utc"] - previous) < cooldown:
            continue
        last[key] = row["release_utc"]
        keep.append(row["event_id"])
    return events.filter(pl.col("event_id").is_in(keep)).sort("release_utc")


def alert_payload(shop_id: str, camera: str, event: dict) -> dict:
    """The JSON an alert channel receives for one fall."""
    return {
        "kind": "falling_object",
        "shop_id": shop_id,
        "camera": camera,
        **{name: value.isoformat() if hasattr(value, "isoformat") else value
           for name, value in event.items() if name in ("event_id", "zone", "release_utc", "landing_utc",
                                                         "drop_height_px", "confidence", "still")},
    }


def sent_rows(events: pl.DataFrame, camera: str, sent_utc: datetime, channel: str) -> pl.DataFrame:
    """Alert-log rows for `events` of `camera` delivered at `sent_utc` through `channel`."""
    return events.select(
        "event_id", pl.lit(camera).alias("camera"), "zone", "release_utc",
        pl.lit(sent_utc).cast(ALERTS_SCHEMA["sent_utc"]).alias("sent_utc"), pl.lit(channel).alias("channel"))
