"""Delivering alerts: one attempt per channel at a time, a failure retried later with exponential
back-off, a success never repeated (the delivery log says so), and a failing endpoint holding back
neither the other channels nor the other alerts.

`deliver` is the synchronous pass of a Dagster run (a sensor tick, a shelf segment): under the
shop's log lock it sends the new alerts that pass their cooldown, then the log's failed deliveries
whose retry time has come, and writes the log once. `LiveDelivery` is `frigate listen`'s: one
thread per channel sends as soon as an alert is raised and keeps its failures on a timer; another
writes the outcomes to the log in batches."""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
import requests

from watershop_dagster.alerts.channels import LOG, Sender
from watershop_dagster.alerts.log import (
    DELIVERED,
    FAILED,
    GIVEN_UP,
    NOT_CONFIGURED,
    alert_from_row,
    cooldown_days,
    delivery_row,
    log_day,
    read_log,
    write_rows,
)
from watershop_dagster.alerts.model import SOURCE_RECORDINGS, SOURCE_SHELF, Alert, Cooldown
from watershop_dagster.config import AlertsConfig, WatershopConfig
from watershop_dagster.locks import alert_log_lock

log = logging.getLogger(__name__)

LOG_BATCH_SECONDS = 0.25  # live outcomes are written to the delivery log at most this often
UNREACHABLE = "unreachable"
#: the endpoint itself is down (as opposed to rejecting one alert)
UNREACHABLE_ERRORS = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    first_s: float = 5.0
    max_s: float = 600.0
    max_attempts: int = 8

    @classmethod
    def from_config(cls, alerts: AlertsConfig) -> RetryPolicy:
        return cls(alerts.retry_first_seconds, alerts.retry_max_seconds, alerts.max_attempts)

    def next_attempt(self, attempts: int, now: float) -> float | None:
        """When to try again after `attempts` failed attempts (first_s, doubling, capped); None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + min(self.max_s, self.first_s * 2 ** (attempts - 1))


def channels_of(alert: Alert, senders: dict[str, Sender]) -> tuple[str, ...]:
    """The rule's channels, or every configured one; none at all: logged only."""
    return alert.channels or tuple(senders) or (LOG,)


def attempt(alert: Alert, channel: str, senders: dict[str, Sender], attempts: int, policy: RetryPolicy,
            clock: Callable[[], float] = time.time) -> dict:
    """One attempt on one channel after `attempts` failed ones: the log row of its outcome."""
    if channel == LOG:
        log.info("ALERT %s (no channel configured)", alert.text())
        return delivery_row(alert, LOG, DELIVERED, 0, clock())
    sender = senders.get(channel)
    if sender is None:
        return delivery_row(alert, channel, NOT_CONFIGURED, attempts, None, error=f"channel {channel} not configured")
    try:
        sender(alert)
    except Exception as exc:  # any failure of an endpoint is logged and retried, never raised
        now = clock()
        retry_at = policy.next_attempt(attempts + 1, now)
        log.warning("alert %s not delivered on %s (attempt %d): %s", alert.alert_id, channel, attempts + 1, exc)
        why = UNREACHABLE if isinstance(exc, UNREACHABLE_ERRORS) else "failed"
        return delivery_row(alert, channel, FAILED if retry_at else GIVEN_UP, attempts + 1, now, retry_at,
                            f"{why}: {type(exc).__name__}: {exc}")
    return delivery_row(alert, channel, DELIVERED, attempts + 1, clock())


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0  # to be retried
    given_up: int = 0
    not_configured: int = 0
    suppressed: int = 0  # within their rule's cooldown: not sent
    already_logged: int = 0  # raised before: never sent again
    retried: int = 0

    def count(self, rows: Iterable[dict]) -> None:
        for row in rows:
            status = row["status"]
            if status == DELIVERED:
                self.delivered += 1
            elif status == FAILED:
                self.failed += 1
            elif status == GIVEN_UP:
                self.given_up += 1
            else:
                self.not_configured += 1

    def summary(self) -> str:
        return (f"{self.delivered} delivered, {self.failed} failed (retried later), {self.given_up} given up, "
                f"{self.not_configured} on channels not configured, {self.suppressed} within cooldown, "
                f"{self.already_logged} already raised, {self.retried} retries")


def _cooldown(logged: pl.DataFrame) -> Cooldown:
    fired: dict[tuple[str, str], list[float]] = {}
    for rule, subject, ts in logged.unique(["alert_id"]).select("rule", "subject", "ts").iter_rows():
        fired.setdefault((rule, subject), []).append(ts.timestamp())
    return Cooldown(fired)


def deliver(config: WatershopConfig, shop_id: str, alerts: list[Alert], senders: dict[str, Sender],
            clock: Callable[[], float] = time.time,
            retry_sources: tuple[str, ...] = (SOURCE_RECORDINGS, SOURCE_SHELF)) -> DeliveryReport:
    """Send the alerts not raised before that pass their cooldown, and retry the shop's failed
    deliveries (of `retry_sources`) that are due; every outcome goes to the log. An alert the
    endpoint rejects fails alone; an endpoint that cannot be reached (refused, timed out) is not
    tried again in this pass, so a dead one costs one timeout, not one per alert."""
    policy, tz = RetryPolicy.from_config(config.alerts), config.shop(shop_id).tz
    report, unreachable = DeliveryReport(), {}

    def send(alert: Alert, channel: str, attempts: int) -> dict:
        if channel in unreachable:  # tried again with the attempt that found it down
            return delivery_row(alert, channel, FAILED, attempts, None, unreachable[channel],
                                f"not tried: {channel} unreachable earlier in this pass")
        row = attempt(alert, channel, senders, attempts, policy, clock)
        if row["status"] == FAILED and row["error"].startswith(UNREACHABLE):
            unreachable[channel] = row["next_attempt_at"].timestamp()
        return row

    with alert_log_lock(config.warehouse_dir, shop_id):
        days = {log_day(alert, tz) for alert in alerts}
        logged = read_log(config, shop_id, cooldown_days(days))
        known, cooldown = set(logged["alert_id"].to_list()), _cooldown(logged)
        rows: dict = {}
        for alert in sorted(alerts, key=lambda a: (a.ts, a.alert_id)):
            if alert.alert_id in known:
                report.already_logged += 1
                continue
            known.add(alert.alert_id)
            if not cooldown.admit(alert.rule, alert.subject, alert.ts, alert.cooldown_s):
                report.suppressed += 1
                continue
            new = [send(alert, channel, 0) for channel in channels_of(alert, senders)]
            rows.setdefault(log_day(alert, tz), []).extend(new)
            report.count(new)
        write_rows(config, shop_id, rows)
        due = read_log(config, shop_id).filter(
            (pl.col("status") == FAILED) & pl.col("source").is_in(list(retry_sources))
            & (pl.col("next_attempt_at").dt.epoch("us") <= int(clock() * 1e6))
            & ~pl.col("alert_id").is_in([row["alert_id"] for day_rows in rows.values() for row in day_rows]))
        retried: dict = {}
        for row in due.iter_rows(named=True):
            again = send(alert_from_row(row, shop_id), row["channel"], row["attempts"])
            retried.setdefault(row["date"], []).append(again)
            report.count([again])
            report.retried += 1
        write_rows(config, shop_id, retried)
    return report


@dataclass(order=True)
class _Retry:
    due: float
    seq: int
    alert: Alert = field(compare=False)
    attempts: int = field(compare=False)


class LiveDelivery:
    """Per-channel sender threads for a long-running process; `submit` returns at once."""

    def __init__(self, config: WatershopConfig, shop_id: str, senders: dict[str, Sender],
                 clock: Callable[[], float] = time.time):
        self.config, self.shop_id, self.senders, self.clock = config, shop_id, senders, clock
        self.policy, self.tz = RetryPolicy.from_config(config.alerts), config.shop(shop_id).tz
        self.outcomes: deque[dict] = deque(maxlen=10_000)  # latest log rows written, newest last
        self._queues: dict[str, queue.Queue] = {}
        self._threads: list[threading.Thread] = []
        self._seq = itertools.count()
        self._log_queue: queue.Queue = queue.Queue()
        self._log_thread = threading.Thread(target=self._write_log, name="alert-log", daemon=True)

    def start(self, pending: Iterable[tuple[Alert, int, float]] = ()) -> LiveDelivery:
        """Start the channel threads with `pending` (alert, attempts, next attempt) failures to retry."""
        self._log_thread.start()
        for channel in [*self.senders, LOG]:
            self._queues[channel] = queue.Queue()
            thread = threading.Thread(target=self._run, args=(channel,), name=f"alert-{channel}", daemon=True)
            self._threads.append(thread)
            thread.start()
        for alert, attempts, due in pending:
            if alert.channels[0] in self._queues:
                self._queues[alert.channels[0]].put(_Retry(due, next(self._seq), alert, attempts))
        return self

    def submit(self, alert: Alert) -> None:
        for channel in channels_of(alert, self.senders):
            if channel in self._queues:
                self._queues[channel].put(alert)
            else:
                self._record(attempt(alert, channel, self.senders, 0, self.policy, self.clock))

    def _run(self, channel: str) -> None:
        work: queue.Queue = self._queues[channel]
        retries: list[_Retry] = []
        while True:
            timeout = max(0.0, retries[0].due - self.clock()) if retries else None
            try:
                item = work.get(timeout=timeout)
            except queue.Empty:
                item = heapq.heappop(retries)
            if item is None:
                return
            if isinstance(item, _Retry) and item.due > self.clock():
                heapq.heappush(retries, item)
                continue
            alert, attempts = (item.alert, item.attempts) if isinstance(item, _Retry) else (item, 0)
            row = attempt(alert, channel, self.senders, attempts, self.policy, self.clock)
            if row["status"] == FAILED:
                heapq.heappush(retries, _Retry(row["next_attempt_at"].timestamp(), next(self._seq), alert,
                                               row["attempts"]))
            self._record(row)

    def _record(self, row: dict) -> None:
        self._log_queue.put(row)

    def _write_log(self) -> None:
        """Outcomes to the delivery log in batches, off the senders' path (a write costs milliseconds)."""
        while True:
            rows = [self._log_queue.get()]
            if rows[0] is not None:
                time.sleep(LOG_BATCH_SECONDS)  # the alert's other channels finish meanwhile: one write
            while not self._log_queue.empty():
                rows.append(self._log_queue.get())
            written = [row for row in rows if row is not None]
            by_day: dict = {}
            for row in written:
                by_day.setdefault(log_day(alert_from_row(row, self.shop_id), self.tz), []).append(row)
            try:
                with alert_log_lock(self.config.warehouse_dir, self.shop_id):
                    write_rows(self.config, self.shop_id, by_day)
            except Exception:  # the lake unreachable: delivery goes on, the outcomes are in the process log
                log.exception("delivery log not written for %s", [(r["alert_id"], r["channel"], r["status"])
                                                                   for r in written])
            for row in written:
                self.outcomes.append(row)
                if row["status"] == DELIVERED:
                    log.info("ALERT %s delivered on %s", row["alert_id"], row["channel"])
            if len(written) < len(rows):
                return

    def stop(self) -> None:
        for work in self._queues.values():
            work.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        self._log_queue.put(None)
        self._log_thread.join(timeout=10)


def pending_live(config: WatershopConfig, shop_id: str, source: str) -> list[tuple[Alert, int, float]]:
    """The shop's failed deliveries of `source` (alert, attempts, next attempt) for a restarted process."""
    rows = read_log(config, shop_id).filter((pl.col("status") == FAILED) & (pl.col("source") == source))
    return [(alert_from_row(row, shop_id), row["attempts"], row["next_attempt_at"].timestamp())
            for row in rows.iter_rows(named=True)]


def logged_cooldown(config: WatershopConfig, shop_id: str, source: str, now: float) -> Cooldown:
    """The cooldown state of `source`'s alerts logged today and yesterday (a restarted process)."""
    today = datetime.fromtimestamp(now, config.shop(shop_id).tz).date()
    logged = read_log(config, shop_id, cooldown_days({today}))
    return _cooldown(logged.filter(pl.col("source") == source))
