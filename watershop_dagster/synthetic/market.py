"""The demo supermarket's days: two zoned cameras filmed for a short stretch, and the receipts of the
very shoppers they film.

Each camera (`MARKET_CAMERAS`) looks at its own side of the store (`supermarket.camera_view`:
entrance, aisle, shelf wall, promo stand, checkout) and is filmed for `duration_s` once a day, at
another hour each day. The shoppers `supermarket.plan_shoppers` plans stop at one to three zones,
and most of them at the checkout last. Receipts follow from those stops, so behaviour and sales agree:

* a shopper who stops at the checkout pays there (one receipt, timestamped as they leave the till);
  one who never does buys nothing (the conversion the marts measure);
* a receipt holds products of the categories of each zone the shopper stopped at
  (`CATEGORY_ZONES`), more of them the longer the stop (dwell -> sales), promo-stand lines at a
  discount, and an impulse item or two from the checkout's categories;
* in a treated zone-day of an experiment, the zone's stops put `lift` more items in the basket.

Everything is a pure function of (shop, day, seed): re-planning a day gives the same scenes and lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl

from watershop_dagster.receipts.generate import (
    CATEGORIES,
    PAYMENT_MODES,
    Catalogue,
    catalogue,
)
from watershop_dagster.receipts.zones import ZoneMap
from watershop_dagster.synthetic.footage import _derive_seed
from watershop_dagster.synthetic.supermarket import (
    CameraView,
    Shopper,
    SupermarketScene,
    camera_view,
    plan_lighting,
    plan_shoppers,
)
from watershop_dagster.vocabulary import RECEIPT_COLUMNS

MARKET_CAMERAS = ("fresh", "grocery")
VIEW_SEED = 0  # the store's layout (zones in the config) stays put whatever seed plans the shoppers
#: each product zone's categories; the aisles are walkways and sell nothing
CATEGORY_ZONES = {
    "shelf_fresh": ("produce", "dairy", "bakery", "meat", "deli"),
    "promo_fresh": ("frozen",),
    "checkout_fresh": ("confectionery",),
    "shelf_grocery": ("pantry", "breakfast", "household", "personal_care", "baby", "pet"),
    "promo_grocery": ("beverages", "alcohol"),
    "checkout_grocery": ("snacks",),
}
#: local start of each camera's daily stretch, by day number (cycling): another hour each day
FILM_STARTS = {"fresh": (time(10, 5), time(13, 10), time(18, 15)),
               "grocery": (time(10, 35), time(17, 40), time(12, 45))}
SHOPPERS_PER_MINUTE = 10.0
PAUSE_S = (3.0, 15.0)
PAYING_SHARE = 0.75  # shoppers who end at the checkout; the others leave without buying
SECONDS_PER_SHELF_ITEM = 5.0  # a shelf stop puts 1 + Poisson(dwell / this) items in the basket
SECONDS_PER_PROMO_ITEM = 8.0
PROMO_DISCOUNT = 0.2
IMPULSE_ITEMS = 0.5  # mean extra items picked at the checkout
LOYALTY_P = 0.4


@dataclass(frozen=True)
class Stop:
    """A pause of a shopper inside one zone, in seconds from the start of the camera's stretch."""

    zone: str
    kind: str
    start_s: float
    end_s: float

    @property
    def dwell_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class MarketCameraDay:
    """One camera's filmed stretch of a day: the scene to render and its local start."""

    camera: str
    local_start: datetime
    duration_s: float
    scene: SupermarketScene

    @property
    def view(self) -> CameraView:
        return self.scene.view

    @property
    def shoppers(self) -> list[Shopper]:
        return self.scene.shoppers


def market_zone_map() -> ZoneMap:
    """The demo's category -> zone table (it never changes)."""
    return ZoneMap.constant({category: zone for zone, categories in CATEGORY_ZONES.items() for category in categories})


def market_cameras() -> dict[str, dict]:
    """The shop's `cameras:` mapping (Frigate's shape): each view's zones, in relative coordinates."""
    return {camera: {"zones": camera_view(camera, index, VIEW_SEED).frigate_zones()}
            for index, camera in enumerate(MARKET_CAMERAS)}


def plan_market_day(tz, day: date, day_number: int, seed: int, *, duration_s: float, fps: float,
                    size: tuple[int, int]) -> list[MarketCameraDay]:
    """Each camera's stretch of `day` (the `day_number`-th of the demo): its shoppers and lighting."""
    planned = []
    for index, camera in enumerate(MARKET_CAMERAS):
        view = camera_view(camera, index, VIEW_SEED)
        day_seed = _derive_seed(seed, camera, day.toordinal())
        shoppers = plan_shoppers(view, duration_s, day_seed, shoppers_per_minute=SHOPPERS_PER_MINUTE,
                                 still_shoppers=0, pause_s=PAUSE_S, checkout_share=PAYING_SHARE)
        local_start = datetime.combine(day, FILM_STARTS[camera][day_number % len(FILM_STARTS[camera])], tzinfo=tz)
        scene = SupermarketScene(view, shoppers, local_start.astimezone(UTC), fps, size,
                                 lighting=plan_lighting(duration_s, day_seed, camera))
        planned.append(MarketCameraDay(camera, local_start, duration_s, scene))
    return planned


def shopper_stops(shopper: Shopper, view: CameraView) -> list[Stop]:
    """The shopper's pauses (legs standing still), each in the zone holding the spot."""
    stops = []
    for leg in shopper.legs:
        if leg.start != leg.end:
            continue
        zone = next((z for z in view.zones if z.kind != "entrance" and z.contains(*leg.start)), None)
        if zone is not None:
            stops.append(Stop(zone.name, zone.kind, leg.t0, leg.t1))
    return stops


def _items(rng: np.random.Generator, stop: Stop, lift: float) -> int:
    if stop.kind == "checkout":
        return int(rng.poisson(IMPULSE_ITEMS * (1 + lift)))
    per_item = SECONDS_PER_PROMO_ITEM if stop.kind == "promo" else SECONDS_PER_SHELF_ITEM
    return 1 + int(rng.poisson(stop.dwell_s / per_item * (1 + lift)))


def _pick(rng: np.random.Generator, cat: Catalogue, categories: tuple[str, ...], n: int) -> np.ndarray:
    """`n` products of `categories`, the popular ones more often."""
    members = np.flatnonzero(np.isin(cat.category, [CATEGORIES.index(c) for c in categories]))
    weights = cat.popularity[members] / cat.popularity[members].sum()
    return rng.choice(members, n, p=weights)


def market_receipts(days: list[MarketCameraDay], day: date, seed: int,
                    treated: frozenset[str] = frozenset(), lift: float = 0.0) -> pl.DataFrame:
    """The receipt lines (RECEIPT_COLUMNS, timestamps local) of the shoppers who paid at a checkout.

    `treated`: zones of an experiment's treatment arm on this day; their stops yield `lift` more items."""
    cat = catalogue(seed)
    rows: list[dict] = []
    for till, camera_day in enumerate(days, start=1):
        rng = np.random.default_rng(_derive_seed(seed, camera_day.camera, day.toordinal(), "receipts"))
        paid = 0
        for shopper in sorted(camera_day.shoppers, key=lambda s: s.t_entry):
            stops = shopper_stops(shopper, camera_day.view)
            checkout = [stop for stop in stops if stop.kind == "checkout"]
            if not checkout:
                continue
            paid += 1
            receipt_id = f"{day:%Y%m%d}-T{till}-{paid:04d}"
            sold_at = camera_day.local_start.replace(tzinfo=None) + timedelta(seconds=round(checkout[-1].end_s))
            customer = f"M{rng.integers(1, 400):04d}" if rng.random() < LOYALTY_P else None
            payment = PAYMENT_MODES[int(rng.choice(len(PAYMENT_MODES), p=(0.25, 0.5, 0.25)))]
            lines = []
            for stop in stops:
                categories = CATEGORY_ZONES.get(stop.zone)
                if not categories:
                    continue
                n = _items(rng, stop, lift if stop.zone in treated else 0.0)
                lines += [(product, stop.kind == "promo") for product in _pick(rng, cat, categories, n)]
            if not lines:  # came to the till for one thing only
                lines = [(product, False) for product in _pick(rng, cat, CATEGORY_ZONES[checkout[-1].zone], 1)]
            for product, promo in lines:
                quantity = float(rng.geometric(0.8))
                price = float(cat.price[product])
                discount = round(quantity * price * PROMO_DISCOUNT, 2) if promo else 0.0
                rows.append({
                    "receipt_id": receipt_id, "timestamp": sold_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "till": f"T{till}", "customer_id": customer, "payment_mode": payment,
                    "product_id": str(cat.product_id[product]), "product_name": str(cat.product_name[product]),
                    "category": CATEGORIES[int(cat.category[product])], "quantity": quantity, "unit_price": price,
                    "discount": discount, "line_total": round(quantity * price - discount, 2),
                })
    schema = {column: pl.Float64 if column in ("quantity", "unit_price", "discount", "line_total") else pl.Utf8
              for column in RECEIPT_COLUMNS}
    return pl.DataFrame(rows, schema=schema).select(RECEIPT_COLUMNS)
