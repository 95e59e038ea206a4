"""Seeded supermarket receipts: demo data, test input, and the ground truth for the experiment benchmark.

A catalogue of a few hundred products in 16 categories; each day a Poisson number of receipts with
hourly and weekly patterns, a store-wide daily shock (weather, paydays), per-category weekday
profiles (wine sells on Saturday) and autocorrelated per-category daily shocks, baskets of several
lines, product promotions (a discount and a few more units), and voids as negative lines.

An optional injected effect makes the truth known: every line of a treated zone-day (a zone's
categories, resolved through the versioned zone map on that date) gets Poisson(lift) extra copies,
so the zone-day's expected sales rise by exactly `lift`. `displaced` takes that share of the added
sales away from the other zones the same day (sales moving between zones, not new sales).
Everything is vectorised over all lines of the range: eight weeks of a 400-receipt store is ~0.2 s.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from watershop_dagster.receipts.schema import RECEIPT_COLUMNS
from watershop_dagster.receipts.zones import ZoneMap

CATEGORIES = (
    "produce", "dairy", "bakery", "meat", "frozen", "beverages", "snacks", "confectionery",
    "pantry", "breakfast", "household", "personal_care", "alcohol", "baby", "pet", "deli",
)
ZONES = tuple(f"Z{i}" for i in range(1, 9))
# Two categories per zone, in CATEGORIES order.
DEFAULT_ZONE_OF_CATEGORY = {category: ZONES[i // 2] for i, category in enumerate(CATEGORIES)}
PAYMENT_MODES = ("Cash", "Card", "UPI")
_PAYMENT_P = (0.3, 0.5, 0.2)
# Monday..Sunday receipts relative to a Monday.
WEEKDAY_FACTOR = np.array([0.9, 0.85, 0.9, 0.95, 1.1, 1.3, 1.0])
# Opening hours 08:00-22:00; a late-morning and an evening peak.
OPEN_HOUR, CLOSE_HOUR = 8, 22
_HOURLY = np.array([3, 5, 8, 10, 9, 7, 6, 6, 7, 10, 12, 10, 7, 4], dtype=float)


@dataclass(frozen=True)
class StoreProfile:
    """The knobs of the simulated store; defaults resemble a 300 m2 neighbourhood supermarket."""

    receipts_per_day: float = 400.0
    products: int = 300
    basket_mean: float = 6.0  # lines per receipt
    store_day_sd: float = 0.08  # log-scale sd of the store-wide daily shock
    category_weekday_sd: float = 0.15  # log-scale spread of each category's weekday profile
    category_day_sd: float = 0.12  # log-scale sd of a category's daily shock
    category_day_ar: float = 0.5  # its day-to-day autocorrelation
    season_amplitude: float = 0.05  # yearly seasonality of traffic
    promo_weekly_p: float = 0.04  # chance a product is on promotion in a given week
    void_p: float = 0.004  # share of lines voided by a matching negative line
    loyalty_p: float = 0.35  # share of receipts with a loyalty customer id
    customers: int = 2000
    tills: int = 4


@dataclass(frozen=True)
class InjectedEffect:
    """A known lift in chosen zone-days: `lift` 0.10 = +10 % expected sales of the zone's categories."""

    lift: float
    treated: frozenset[tuple[str, date]]
    displaced: float = 0.0  # share of the added sales taken from the day's other zones

    @classmethod
    def from_assignment(cls, assignment: pl.DataFrame, lift: float, displaced: float = 0.0) -> InjectedEffect:
        """Treat every (zone, date) whose arm is 'treatment' in an experiment's assignment."""
        rows = assignment.filter(pl.col("arm") == "treatment").select("zone", "date").rows()
        return cls(lift, frozenset((zone, day) for zone, day in rows), displaced)


@dataclass(frozen=True)
class Catalogue:
    product_id: np.ndarray
    product_name: np.ndarray
    category: np.ndarray  # index into CATEGORIES
    price: np.ndarray
    popularity: np.ndarray  # relative pick weight within its category


@dataclass
class ReceiptLines:
    """Generated lines as arrays (one entry per line) plus the day range; frames are built on demand."""

    start: date
    days: int
    catalogue: Catalogue
    day: np.ndarray
    second: np.ndarray
    receipt: np.ndarray
    till: np.ndarray
    customer: np.ndarray  # -1: no loyalty card
    payment: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    discount: np.ndarray
    zone_of_day_category: np.ndarray  # (days, categories) -> index into `zones`
    zones: tuple[str, ...]
    extra: dict = field(default_factory=dict)

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @property
    def line_total(self) -> np.ndarray:
        return np.round(self.quantity * self.catalogue.price[self.product] - self.discount, 2)

    def zone_day_sales(self) -> pl.DataFrame:
        """Net sales per (zone, date): the experiment's zone_sales metric straight from the arrays."""
        category = self.catalogue.category[self.product]
        zone = self.zone_of_day_category[self.day, category]
        keep = zone >= 0
        cells = np.bincount(zone[keep] * self.days + self.day[keep], weights=self.line_total[keep],
                            minlength=len(self.zones) * self.days)
        return pl.DataFrame({
            "zone": np.repeat(np.array(self.zones), self.days),
            "date": self.dates * len(self.zones),
            "metric": cells,
        }, schema={"zone": pl.Utf8, "date": pl.Date, "metric": pl.Float64})

    def frame(self) -> pl.DataFrame:
        """The lines in the canonical receipt schema (typed), ordered by time and receipt."""
        cat = self.catalogue
        order = np.lexsort((self.receipt, self.second, self.day))
        day = self.day[order]
        timestamps = (np.datetime64(self.start, "s") + day.astype("timedelta64[D]")
                      + self.second[order].astype("timedelta64[s]"))
        date_tag = np.char.replace(np.datetime_as_string(timestamps.astype("datetime64[D]")), "-", "")
        return pl.DataFrame({
            "receipt_id": np.char.add(np.char.add(date_tag, "-"), np.char.zfill(self.receipt[order].astype(str), 5)),
            "timestamp": timestamps.astype("datetime64[us]"),
            "till": np.char.add("T", (self.till[order] + 1).astype(str)),
            "customer_id": np.where(self.customer[order] >= 0,
                                    np.char.add("C", np.char.zfill(self.customer[order].astype(str), 5)), ""),
            "payment_mode": np.array(PAYMENT_MODES)[self.payment[order]],
            "product_id": cat.product_id[self.product[order]],
            "product_name": cat.product_name[self.product[order]],
            "category": np.array(CATEGORIES)[cat.category[self.product[order]]],
            "quantity": self.quantity[order].astype(float),
            "unit_price": cat.price[self.product[order]],
            "discount": self.discount[order],
            "line_total": self.line_total[order],
        }).with_columns(pl.col("customer_id").replace("", None))


def catalogue(seed: int, products: int = 300) -> Catalogue:
    """Products spread over CATEGORIES with category price levels and Zipf-like popularity."""
    rng = np.random.default_rng([seed, 0])
    category = np.sort(rng.integers(0, len(CATEGORIES), products))
    category[: len(CATEGORIES)] = np.arange(len(CATEGORIES))  # every category has products
    category = np.sort(category)
    level = np.exp(rng.normal(np.log(3.0), 0.6, len(CATEGORIES)))
    price = np.round(level[category] * np.exp(rng.normal(0, 0.4, products)), 2).clip(0.2)
    rank = np.empty(products)
    for index in range(len(CATEGORIES)):
        members = np.flatnonzero(category == index)
        rank[members] = rng.permutation(len(members)) + 1
    names = np.array([f"{CATEGORIES[c].replace('_', ' ').title()} item {i + 1:03d}" for i, c in enumerate(category)])
    ids = np.array([f"P{i + 1:04d}" for i in range(products)])
    return Catalogue(ids, names, category, price, 1.0 / rank**0.8)


def _zone_matrix(zone_map: ZoneMap, dates: list[date], zones: tuple[str, ...]) -> np.ndarray:
    """(days, categories) -> index into `zones` of the category's zone that day; -1 when unmapped."""
    grid = pl.DataFrame({"date": np.repeat(np.array(dates, dtype="datetime64[D]"), len(CATEGORIES)),
                         "category": list(CATEGORIES) * len(dates)}).with_columns(pl.col("date").cast(pl.Date))
    zone = zone_map.resolve(grid)["zone"].replace_strict({z: i for i, z in enumerate(zones)}, default=-1,
                                                          return_dtype=pl.Int64)
    return zone.to_numpy().reshape(len(dates), len(CATEGORIES))


def _per_row_choice(rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry of `rows`, an index drawn with probabilities weights[row] (rows normalised)."""
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    flat = (cdf + np.arange(len(weights))[:, None]).ravel()
    picks = np.searchsorted(flat, rows + rng.random(len(rows)), side="right")
    return np.minimum(picks - rows * weights.shape[1], weights.shape[1] - 1)


def _ar1(rng: np.random.Generator, days: int, series: int, sd: float, rho: float) -> np.ndarray:
    """(days, series) stationary AR(1) with marginal sd `sd`."""
    shocks = rng.normal(0, sd * np.sqrt(1 - rho**2), (days, series))
    out = np.empty_like(shocks)
    out[0] = rng.normal(0, sd, series)
    for t in range(1, days):
        out[t] = rho * out[t - 1] + shocks[t]
    return out


def generate_receipts(
    start: date,
    end: date,
    seed: int = 0,
    profile: StoreProfile = StoreProfile(),
    zone_map: ZoneMap | None = None,
    effect: InjectedEffect | None = None,
) -> ReceiptLines:
    """Receipt lines for every day from `start` to `end` inclusive."""
    days = (end - start).days + 1
    if days < 1:
        raise ValueError(f"end {end} is before start {start}")
    zone_map = zone_map or ZoneMap.constant(DEFAULT_ZONE_OF_CATEGORY)
    zones = tuple(sorted(zone_map.table["zone"].unique()))
    dates = [start + timedelta(days=i) for i in range(days)]
    zone_of = _zone_matrix(zone_map, dates, zones)
    cat = catalogue(seed, profile.products)
    rng = np.random.default_rng([seed, 1])
    n_cat = len(CATEGORIES)

    # Day level: traffic and category mix.
    ordinal = np.array([d.toordinal() for d in dates])
    weekday = np.array([d.weekday() for d in dates])
    season = 1 + profile.season_amplitude * np.sin(2 * np.pi * ordinal / 365.25)
    store_shock = np.exp(rng.normal(0, profile.store_day_sd, days))
    receipts = rng.poisson(profile.receipts_per_day * WEEKDAY_FACTOR[weekday] / WEEKDAY_FACTOR.mean()
                           * season * store_shock)
    share = rng.dirichlet(np.full(n_cat, 8.0))
    weekday_profile = np.exp(rng.normal(0, profile.category_weekday_sd, (7, n_cat)))
    mix = share * weekday_profile[weekday] * np.exp(_ar1(rng, days, n_cat, profile.category_day_sd,
                                                         profile.category_day_ar))

    # Receipt level.
    receipt_day = np.repeat(np.arange(days), receipts)
    n_receipts = len(receipt_day)
    receipt_no = np.arange(n_receipts) - np.repeat(np.cumsum(receipts) - receipts, receipts) + 1
    hour = rng.choice(len(_HOURLY), n_receipts, p=_HOURLY / _HOURLY.sum()) + OPEN_HOUR
    second = (hour * 3600 + rng.integers(0, 3600, n_receipts)).astype(np.int64)
    till = rng.integers(0, profile.tills, n_receipts)
    customer = np.where(rng.random(n_receipts) < profile.loyalty_p, rng.integers(1, profile.customers + 1, n_receipts), -1)
    payment = rng.choice(len(PAYMENT_MODES), n_receipts, p=_PAYMENT_P)
    size = 1 + rng.poisson(profile.basket_mean - 1, n_receipts)

    # Line level.
    line_receipt = np.repeat(np.arange(n_receipts), size)
    line_day = receipt_day[line_receipt]
    line_cat = _per_row_choice(rng, mix, line_day)
    within = np.zeros((n_cat, int(np.bincount(cat.category).max())))
    members = [np.flatnonzero(cat.category == c) for c in range(n_cat)]
    for c, m in enumerate(members):
        within[c, : len(m)] = cat.popularity[m]
    slot = _per_row_choice(rng, within, line_cat)
    offsets = np.array([m[0] for m in members])  # categories are contiguous after the sort
    product = offsets[line_cat] + slot
    quantity = rng.geometric(0.75, len(product)).astype(float)
    week = (ordinal[line_day] - ordinal[0]) // 7
    n_weeks = int(week.max()) + 1 if len(week) else 1
    on_promo = np.random.default_rng([seed, 2]).random((n_weeks, profile.products)) < profile.promo_weekly_p
    promo_pct = np.round(np.random.default_rng([seed, 3]).uniform(0.1, 0.3, profile.products), 2)
    promoted = on_promo[week, product]
    quantity += promoted * rng.integers(0, 2, len(product))
    discount = np.round(np.where(promoted, quantity * cat.price[product] * promo_pct[product], 0.0), 2)

    line = {"receipt": line_receipt, "product": product, "quantity": quantity, "discount": discount}
    if effect is not None and effect.lift:
        line = _inject(rng, line, line_day, cat, zone_of, zones, dates, effect)
    line = _void(rng, line, profile.void_p)
    r = line["receipt"]
    return ReceiptLines(
        start=start, days=days, catalogue=cat, day=receipt_day[r], second=second[r], receipt=receipt_no[r],
        till=till[r], customer=customer[r], payment=payment[r], product=line["product"],
        quantity=line["quantity"], discount=line["discount"], zone_of_day_category=zone_of, zones=zones,
    )


def _inject(rng, line, line_day, cat, zone_of, zones, dates, effect: InjectedEffect) -> dict:
    """Extra copies of treated zone-days' lines (and, when displaced > 0, fewer lines elsewhere)."""
    treated_cells = np.zeros(zone_of.shape[0] * len(zones), dtype=bool)
    day_index = {d: i for i, d in enumerate(dates)}
    for zone, day in effect.treated:
        if day in day_index and zone in zones:
            treated_cells[zones.index(zone) * len(dates) + day_index[day]] = True
    zone = zone_of[line_day, cat.category[line["product"]]]
    treated = (zone >= 0) & treated_cells[np.maximum(zone, 0) * len(dates) + line_day]
    copies = np.where(treated, rng.poisson(effect.lift, len(treated)), 0)
    keep = np.ones(len(treated), dtype=bool)
    if effect.displaced:
        value = line["quantity"] * cat.price[line["product"]] - line["discount"]
        added = np.bincount(line_day, weights=np.where(treated, value * effect.lift, 0), minlength=len(dates))
        others = (zone >= 0) & ~treated
        pool = np.bincount(line_day, weights=np.where(others, value, 0), minlength=len(dates))
        drop_p = np.divide(effect.displaced * added, pool, out=np.zeros(len(dates)), where=pool > 0).clip(0, 1)
        keep = ~(others & (rng.random(len(treated)) < drop_p[line_day]))
    repeat = keep.astype(int) + copies
    return {key: np.repeat(values, repeat) for key, values in line.items()}


def _void(rng, line, void_p: float) -> dict:
    """Some lines are voided at the till: a second line with the negative quantity and discount."""
    voided = np.flatnonzero(rng.random(len(line["product"])) < void_p)
    negated = {key: (-values[voided] if key in ("quantity", "discount") else values[voided])
               for key, values in line.items()}
    return {key: np.concatenate([line[key], negated[key]]) for key in line}


def write_receipt_csvs(lines: ReceiptLines, folder: Path, shop_id: str) -> list[Path]:
    """One canonical CSV per day, receipts_<shop>_<YYYY-MM-DD>.csv, each written atomically."""
    frame = lines.frame().with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S"))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (day,), part in frame.with_columns(pl.col("timestamp").str.slice(0, 10).alias("_day")).group_by(
        "_day", maintain_order=True
    ):
        path = folder / f"receipts_{shop_id}_{day}.csv"
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            part.select(RECEIPT_COLUMNS).write_csv(tmp, float_precision=2)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        paths.append(path)
    return paths
