"""Seeded, realistic POS exports for a water-can shop: demo data and load-test input.

Each shop-day draws from its own random stream keyed by (seed, shop, day), so any day can be
regenerated alone and a range generated day by day equals the range generated at once. The customer
population is keyed by (seed, shop) only, so the same regulars come back day after day.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from watershop_dagster.config import (
    CAN_SIZES,
    PAYMENT_MODES,
    PAYMENT_STATUSES,
    POS_COLUMNS,
    ShopConfig,
    WatershopConfig,
)

DEFAULT_PRICES = {"10L": 20.0, "20L": 35.0}

_REGULAR, _OCCASIONAL, _DEFAULTER, _WALK_IN = 0, 1, 2, 3
# Expected share of a day's transactions per kind of customer.
_SHARE = {_REGULAR: 0.55, _OCCASIONAL: 0.27, _DEFAULTER: 0.03, _WALK_IN: 0.15}
# Regulars come every 1, 2 or 3 days and show up on 90% of their due days.
_PERIODS, _PERIOD_P = np.array([1, 2, 3]), np.array([0.3, 0.4, 0.3])
_ATTENDANCE = 0.9
_OCCASIONAL_DAYS = 10  # an occasional customer comes about once in this many days
_CUSTOMERS_PER_DEFAULTER = 25  # one repeat defaulter per this many daily transactions
# Monday..Sunday: Saturday a little busier, Sunday quieter.
_WEEKDAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 0.65)
# Payment mode mix (in PAYMENT_MODES order: Cash, UPI, Coin) and share unpaid, per kind.
_MODE_P = np.array([[0.40, 0.59, 0.01], [0.50, 0.48, 0.02], [0.70, 0.29, 0.01], [0.62, 0.35, 0.03]])
_UNPAID_P = np.array([0.02, 0.04, 0.65, 0.01])
_LARGE_CAN_P = 0.68  # share of customers preferring 20L
_STICKY_SIZE, _STICKY_MODE, _STICKY_CANS = 0.9, 0.85, 0.8  # how often customers keep their habits
# Time of day: morning peak, evening peak, and the quiet rest of the opening hours.
_PEAK_HOURS, _PEAK_SD_HOURS, _PEAK_P = (8.5, 18.5), 1.0, (0.40, 0.42, 0.18)


@dataclass(frozen=True)
class _Population:
    """A shop's customers, one array entry each; regulars also have a visiting period and phase."""

    kind: np.ndarray
    number: np.ndarray
    period: np.ndarray
    phase: np.ndarray
    size: np.ndarray
    mode: np.ndarray
    cans: np.ndarray

    def of_kind(self, kind: int) -> np.ndarray:
        return np.flatnonzero(self.kind == kind)


def _shop_key(shop_id: str) -> int:
    """A stable integer for the shop id (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.blake2b(shop_id.encode(), digest_size=8).digest(), "big")


@lru_cache(maxsize=64)
def _population(seed: int, shop_id: str, transactions_per_day: float) -> _Population:
    """Customers sized so each kind yields its expected share of `transactions_per_day`."""
    rng = np.random.default_rng([seed, _shop_key(shop_id), 0])
    mean_rate = float(np.sum(_PERIOD_P / _PERIODS)) * _ATTENDANCE
    counts = {
        _REGULAR: max(1, round(transactions_per_day * _SHARE[_REGULAR] / mean_rate)),
        _OCCASIONAL: max(1, round(transactions_per_day * _SHARE[_OCCASIONAL] * _OCCASIONAL_DAYS)),
        _DEFAULTER: max(1, round(transactions_per_day / _CUSTOMERS_PER_DEFAULTER)),
    }
    kind = np.repeat(np.array(list(counts), dtype=np.int8), list(counts.values()))
    n = len(kind)
    period = np.where(kind == _REGULAR, rng.choice(_PERIODS, n, p=_PERIOD_P), 1)
    return _Population(
        kind=kind,
        number=rng.permutation(n) + 1,
        period=period,
        phase=rng.integers(0, period),
        size=(rng.random(n) < _LARGE_CAN_P).astype(np.int8),
        mode=_draw_modes(rng, kind),
        cans=rng.choice([1, 2, 3], n, p=[0.5, 0.35, 0.15]),
    )


def _draw_modes(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Payment mode index per entry, from the mix of that entry's kind."""
    cdf = np.cumsum(_MODE_P, axis=1)[kind]
    return (rng.random(len(kind))[:, None] > cdf[:, :-1]).sum(axis=1)


def _seconds_of_day(shop: ShopConfig) -> tuple[int, int]:
    """Opening window in seconds; a closing time at or before opening means open until midnight."""
    open_s = shop.opening_time.hour * 3600 + shop.opening_time.minute * 60 + shop.opening_time.second
    close_s = shop.closing_time.hour * 3600 + shop.closing_time.minute * 60 + shop.closing_time.second
    return open_s, close_s if close_s > open_s else 86400


def _times_of_day(rng: np.random.Generator, n: int, open_s: int, close_s: int) -> np.ndarray:
    """Seconds after midnight, busy around the morning and evening peaks, all within opening hours."""
    component = rng.choice(3, n, p=_PEAK_P)
    peaks = np.array(_PEAK_HOURS)[np.minimum(component, 1)] * 3600
    seconds = np.where(component < 2, rng.normal(peaks, _PEAK_SD_HOURS * 3600), rng.uniform(open_s, close_s, n))
    outside = (seconds < open_s) | (seconds >= close_s)
    seconds[outside] = rng.uniform(open_s, close_s, int(outside.sum()))
    return seconds.astype(np.int64)


def _visitors(rng: np.random.Generator, pop: _Population, day: date, expected: float) -> np.ndarray:
    """Population indices of today's customers (-1 for each walk-in)."""
    factor = _WEEKDAY_FACTOR[day.weekday()]
    regulars = pop.of_kind(_REGULAR)
    due = regulars[(day.toordinal() - pop.phase[regulars]) % pop.period[regulars] == 0]
    present = due[rng.random(len(due)) < min(1.0, _ATTENDANCE * factor)]
    occasional = rng.choice(pop.of_kind(_OCCASIONAL), rng.poisson(expected * factor * _SHARE[_OCCASIONAL]))
    defaulters = rng.choice(pop.of_kind(_DEFAULTER), rng.poisson(expected * factor * _SHARE[_DEFAULTER]))
    walk_ins = np.full(rng.poisson(expected * factor * _SHARE[_WALK_IN]), -1)
    return np.concatenate([present, occasional, defaulters, walk_ins])


def _habit(rng: np.random.Generator, habit: np.ndarray, sticky: float, other: np.ndarray) -> np.ndarray:
    """The customer's usual choice most of the time, otherwise `other`."""
    return np.where(rng.random(len(habit)) < sticky, habit, other)


def _outside_dst_gap(df: pl.DataFrame, day: date, shop: ShopConfig) -> pl.DataFrame:
    """Drop rows whose local time does not exist (a DST gap), checked only on days with a transition."""
    start = datetime.combine(day, time(), shop.tz)
    if start.utcoffset() == (start + timedelta(days=1)).utcoffset():
        return df
    local = pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S")
    return df.filter(local.dt.replace_time_zone(shop.timezone, ambiguous="earliest", non_existent="null").is_not_null())


def generate_shop_day(shop: ShopConfig, day: date, seed: int = 0, transactions_per_day: float = 60) -> pl.DataFrame:
    """One shop-day of POS transactions with exactly the export's columns, ordered by time."""
    pop = _population(seed, shop.id, float(transactions_per_day))
    rng = np.random.default_rng([seed, _shop_key(shop.id), 1, day.toordinal()])
    who = _visitors(rng, pop, day, transactions_per_day)
    n, known = len(who), who >= 0
    customer = np.where(known, who, 0)
    kind = np.where(known, pop.kind[customer], _WALK_IN)

    habit_size = np.where(known, pop.size[customer], rng.random(n) < _LARGE_CAN_P).astype(np.int64)
    size = _habit(rng, habit_size, _STICKY_SIZE, 1 - habit_size)
    drawn_mode = _draw_modes(rng, kind)
    mode = _habit(rng, np.where(known, pop.mode[customer], drawn_mode), _STICKY_MODE, drawn_mode)
    cans = _habit(rng, np.where(known, pop.cans[customer], 1), _STICKY_CANS, 1 + rng.poisson(0.8, n))
    unpaid = rng.random(n) < _UNPAID_P[kind]
    seconds = _times_of_day(rng, n, *_seconds_of_day(shop))

    order = np.argsort(seconds, kind="stable")
    prices = np.array([shop.prices.get(s, DEFAULT_PRICES[s]) for s in CAN_SIZES])
    numbers = np.where(known, pop.number[customer], 0)[order]
    prefix = f"{shop.id}-{day:%Y%m%d}-"
    df = pl.DataFrame(
        {
            "transaction_id": [f"{prefix}{i:04d}" for i in range(1, n + 1)],
            "timestamp": np.datetime64(day, "us") + (seconds[order] * 1_000_000).astype("timedelta64[us]"),
            "customer_id": [f"C{k:04d}" if k else None for k in numbers.tolist()],
            "payment_mode": np.array(PAYMENT_MODES)[mode[order]],
            "can_size": np.array(CAN_SIZES)[size[order]],
            "number_of_cans": cans[order],
            "amount": prices[size[order]] * cans[order],
            "payment_status": np.array(PAYMENT_STATUSES)[unpaid[order].astype(np.int64)],
        },
        schema={
            "transaction_id": pl.Utf8, "timestamp": pl.Datetime("us"), "customer_id": pl.Utf8,
            "payment_mode": pl.Utf8, "can_size": pl.Utf8, "number_of_cans": pl.Int64,
            "amount": pl.Float64, "payment_status": pl.Utf8,
        },
    ).with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S"))
    return _outside_dst_gap(df, day, shop).select(POS_COLUMNS)


def _atomic_write_csv(df: pl.DataFrame, path: Path) -> Path:
    """Readers (the landing sensor, ingestion) never see a half-written CSV: the temp name is not *.csv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.write_csv(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_transaction_csvs(
    config: WatershopConfig,
    start: date,
    end: date,
    seed: int = 0,
    shop_ids: list[str] | None = None,
    transactions_per_day: float = 60,
) -> list[Path]:
    """Write one CSV per shop-day (inclusive range) to landing/transactions/<shop>/transactions_<day>.csv."""
    shops = [config.shop(shop_id) for shop_id in (shop_ids or config.shop_ids)]
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    return [
        _atomic_write_csv(
            generate_shop_day(shop, day, seed, transactions_per_day),
            config.transactions_landing / shop.id / f"transactions_{day.isoformat()}.csv",
        )
        for shop in shops
        for day in days
    ]


def transactions_for_visits(shop: ShopConfig, truth: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """One POS row per filmed customer visit, timed inside its counter span (synthetic footage's ground truth).

    The person's identity is not written: `customer_id` is a POS-side id derived from the gallery name, as a
    POS loyalty number would be, so linking has to find the visit by time.
    """
    customers = truth.filter(pl.col("role") == "customer").sort("counter_start_utc")
    first = customers["counter_start_utc"].min().date().toordinal() if customers.height else 0
    rng = np.random.default_rng([seed, _shop_key(shop.id), 2, first])
    prices = {**DEFAULT_PRICES, **shop.prices}
    rows = []
    for index, visit in enumerate(customers.iter_rows(named=True), start=1):
        span = (visit["counter_end_utc"] - visit["counter_start_utc"]).total_seconds()
        moment = visit["counter_start_utc"] + timedelta(seconds=float(rng.uniform(0.3, 0.7)) * span)
        local = moment.astimezone(shop.tz)
        size = "20L" if rng.random() < _LARGE_CAN_P else "10L"
        cans = int(rng.integers(1, 4))
        rows.append({
            "transaction_id": f"{shop.id}-{local:%Y%m%d}-V{index:03d}",
            "timestamp": local.strftime("%Y-%m-%d %H:%M:%S"),
            "customer_id": "P" + hashlib.sha1(visit["person"].encode()).hexdigest()[:6].upper(),
            "payment_mode": str(rng.choice(["Cash", "UPI"], p=[0.45, 0.55])),
            "can_size": size,
            "number_of_cans": cans,
            "amount": prices[size] * cans,
            "payment_status": "Unpaid" if rng.random() < 0.1 else "Paid",
        })
    return pl.DataFrame(rows, schema={c: pl.Utf8 if c not in ("number_of_cans", "amount") else (
        pl.Int64 if c == "number_of_cans" else pl.Float64) for c in POS_COLUMNS}, orient="row")


def write_visit_transactions(config: WatershopConfig, shop_id: str, day: date, truth: pl.DataFrame, seed: int = 0) -> Path:
    """Land `transactions_for_visits` as the shop-day's `visits_<day>.csv` export."""
    shop = config.shop(shop_id)
    return _atomic_write_csv(transactions_for_visits(shop, truth, seed),
                             config.transactions_landing / shop.id / f"visits_{day.isoformat()}.csv")


def write_pos_export(df: pl.DataFrame, path: Path) -> Path:
    """Land a POS export (rows with `POS_COLUMNS`) atomically, e.g. the demo story's sales of a day."""
    return _atomic_write_csv(df.select(POS_COLUMNS), Path(path))
