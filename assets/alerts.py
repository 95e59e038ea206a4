"""Alerts of the recordings path: after each materialized partition of the known-person visits
(`alerts`, shop-day), `loitering_events` and `falling_object_events` (camera-day), the sensor
evaluates the configured rules over it and delivers through the shared layer
(`watershop_dagster.alerts`), which also retries failed deliveries when their back-off has passed.

The cursor moves past a partition once its alerts are in the delivery log (a failed delivery is the
log's to retry); a partition whose evaluation raised stays pending for later ticks."""

import json
import time
from collections import defaultdict
from datetime import date

import dagster as dg

from assets.partitions import parse_camera_day, parse_shop_day
from resources import WatershopResource
from watershop_dagster import catalog
from watershop_dagster.alerts.channels import configured_senders
from watershop_dagster.alerts.delivery import deliver
from watershop_dagster.alerts.rules import partition_alerts

#: dataset -> its asset key; the shop-day one first
WATCHED = {entry.name: dg.AssetKey(entry.asset_key)
           for entry in (catalog.ALERTS, catalog.LOITERING_EVENTS, catalog.FALLING_OBJECT_EVENTS)}
MAX_PARTITION_ATTEMPTS = 5  # ticks on which a partition whose evaluation failed is tried again
RECORDS_PER_TICK = 500


def read_alerts_cursor(cursor: str | None) -> dict:
    """{"after": {dataset: storage id}, "pending": {"<dataset>|<partition key>": attempts}}."""
    state = json.loads(cursor) if cursor else {}
    return {"after": state.get("after", {}), "pending": state.get("pending", {})}


def _partition(dataset: str, partition_key: str) -> tuple[str, date, str | None]:
    """(shop, day, camera or None) of a shop-day or camera-day key."""
    if dataset == catalog.ALERTS.name:
        return (*parse_shop_day(partition_key), None)
    shop_id, camera, day = parse_camera_day(partition_key)
    return shop_id, day, camera


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Evaluates the alert rules (known person, loitering, falling object) over each newly "
                       "materialized partition of the recordings path and delivers them (webhook, MQTT, e-mail) "
                       "with cooldown and a durable delivery log; retries failed deliveries with back-off.")
def alerts_sensor(context: dg.SensorEvaluationContext, watershop: WatershopResource):
    cfg = watershop.config
    state = read_alerts_cursor(context.cursor)
    due = dict.fromkeys(state["pending"])
    for dataset, key in WATCHED.items():
        records = context.instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=key, after_storage_id=state["after"].get(dataset)), limit=RECORDS_PER_TICK, ascending=True).records
        for record in records:
            if record.partition_key:
                due[f"{dataset}|{record.partition_key}"] = None
            state["after"][dataset] = record.storage_id
    now = time.time()
    by_shop, evaluated = defaultdict(list), {}
    for item in due:
        dataset, partition_key = item.split("|", 1)
        try:
            shop_id, day, camera = _partition(dataset, partition_key)
            by_shop[shop_id] += partition_alerts(cfg, dataset, shop_id, day, camera, now)
            evaluated[item] = shop_id
        except Exception as exc:  # an unreadable partition: tried again on later ticks, holds back nothing
            attempts = state["pending"].get(item, 0) + 1
            state["pending"][item] = attempts
            if attempts >= MAX_PARTITION_ATTEMPTS:
                context.log.error(f"alerts of {item} not evaluated after {attempts} ticks; given up: {exc}")
                del state["pending"][item]
            else:
                context.log.warning(f"alerts of {item} not evaluated (tick {attempts}): {exc}")
    senders = configured_senders(cfg)
    summaries = []
    for shop in cfg.shops:  # every shop: its failed deliveries are retried when due
        try:
            report = deliver(cfg, shop.id, by_shop.get(shop.id, []), senders)
        except Exception as exc:  # the delivery log unreachable: the shop's partitions are evaluated again
            context.log.error(f"alerts of shop {shop.id} not delivered: {exc}")
            for item, shop_id in evaluated.items():
                if shop_id == shop.id:
                    state["pending"][item] = state["pending"].get(item, 0)
            continue
        for item, shop_id in evaluated.items():
            if shop_id == shop.id:
                state["pending"].pop(item, None)
        summaries.append(f"{shop.id}: {report.summary()}")
    context.update_cursor(json.dumps(state))
    return dg.SkipReason("; ".join(summaries) or "no shop")


def build_alert_definitions() -> dg.Definitions:
    return dg.Definitions(sensors=[alerts_sensor])
