"""The built-in demo: a water-can shop's week, filmed and rung up as one story (and one broken export),
and a small supermarket's last days: two zoned cameras and the receipts of the shoppers they film."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import yaml

from watershop_dagster.atomic import atomic_write, atomic_write_text
from watershop_dagster.config import (
    CONFIG_FILENAME,
    POS_COLUMNS,
    ConfigError,
    WatershopConfig,
    init_workspace,
    load_config,
)
from watershop_dagster.experiment.design import (
    SPEC_FILE,
    TREATMENT,
    ExperimentSpec,
    assign,
    experiment_dir,
    load_spec,
    save_spec,
)
from watershop_dagster.fixtures import fixtures_dir
from watershop_dagster.pos.generate import write_pos_export
from watershop_dagster.receipts.zones import ZONE_MAP_FILE
from watershop_dagster.synthetic.footage import (
    ground_truth_frame,
    ground_truth_path,
    plain_path,
    read_ground_truth,
    write_clips,
    write_ground_truth,
)
from watershop_dagster.synthetic.gallery import (
    Gallery,
    crops_of,
    default_gallery,
    gallery_photos,
)
from watershop_dagster.synthetic.market import (
    market_cameras,
    market_receipts,
    market_zone_map,
    plan_market_day,
)
from watershop_dagster.synthetic.story import (
    REFERENCE_PHOTOS,
    Cast,
    choose_cast,
    plan_story,
)
from watershop_dagster.synthetic.supermarket import (
    SupermarketTruth,
    render_scene,
    scene_truth,
)
from watershop_dagster.warehouse import connect_marts

DEMO_SHOP = "demo_shop"

BROKEN_EXPORT = """transaction_id,timestamp,customer_id,payment_mode,can_size,number_of_cans,amount,payment_status
{shop}-BAD-1,{day} 10:15:00,C9001,Card,20L,1,35,Paid
{shop}-BAD-2,not-a-time,C9002,UPI,20L,1,35,Paid
{shop}-BAD-3,{day} 11:00:00,C9003,UPI,20L,two,70,Paid
{shop}-BAD-4,{day} 12:00:00,C9004,UPI,20L,1,35
{shop}-OK-1,{day} 12:30:00,C9005,upi,20 l,2,70,paid
"""


# Footage is filmed only around visits (a few minutes a day), at a size the vision pipeline
# reads quickly and faces at the counter stay well above its minimum face size.
DEMO_SIZE = (640, 360)
DEMO_FPS = 10.0
# Photos filmed per person: more only cost face detection when the gallery is loaded.
DEMO_PHOTOS_PER_PERSON = 4


def demo_gallery() -> Path | None:
    """The shared fixture faces when they are beside the checkout, else the packages' sample photos."""
    faces = fixtures_dir() / "faces"
    return faces if faces.is_dir() else None


def demo_cast(seed: int) -> tuple[Cast, dict[str, list[Path]], dict[str, list[Path]]]:
    """The story's cast, each fixture person's photos to film and each known person's reference photos.

    Fixture faces (when present) plus the two built-in sample faces make the cast; a VIP, blocked
    or staff member's first `REFERENCE_PHOTOS` photos go to known_people/, the others are filmed.
    Reads no photo (cheap): `film_gallery` crops the faces when there is footage to film.
    """
    folder = demo_gallery()
    photos = gallery_photos(folder) if folder is not None else {}
    counts = {person: len(files) for person, files in photos.items()}
    counts |= {person: 1 for person in ("eileen_collins", "grace_hopper") if person not in photos}
    cast = choose_cast(counts, seed)
    filmed: dict[str, list[Path]] = {}
    references: dict[str, list[Path]] = {}
    for person in cast.people:
        files = photos.get(person, [])
        if person in cast.known:
            references[person], files = files[:REFERENCE_PHOTOS], files[REFERENCE_PHOTOS:]
        filmed[person] = files[:DEMO_PHOTOS_PER_PERSON]
    return cast, filmed, references


def film_gallery(cast: Cast, filmed: dict[str, list[Path]]) -> Gallery:
    """Face crops of the cast: their filmed fixture photos, or the built-in sample photo."""
    builtin = default_gallery()
    gallery: Gallery = {}
    for person in cast.people:
        crops = crops_of(filmed[person]) if filmed[person] else builtin.get(person, [])
        if crops:
            gallery[person] = crops
    missing = [p for p in cast.people if p not in gallery]
    if missing:
        raise ValueError(f"no usable face photo of {missing} in {demo_gallery()}")
    return gallery


def _write_known_people(config: WatershopConfig, cast: Cast, references: dict[str, list[Path]]) -> None:
    for person, role in cast.known.items():
        target = config.known_people_dir / role / person
        target.mkdir(parents=True, exist_ok=True)
        for photo in references.get(person, []):
            if not (target / photo.name).exists():
                tmp = target / f".{photo.name}.tmp"
                shutil.copyfile(photo, tmp)
                os.replace(tmp, target / photo.name)


def _footage_is_current(config: WatershopConfig, camera: str, day: date, truth: pl.DataFrame) -> bool:
    """True when the day's footage was filmed from this very plan (its ground truth matches)."""
    path = ground_truth_path(config.footage_root, camera, day)
    folder = config.footage_root / camera / day.isoformat()
    if not path.exists() or not folder.is_dir():
        return False
    return read_ground_truth(path).equals(truth.select(read_ground_truth(path).columns))


def build_demo(workspace: Path, start: date, end: date, seed: int) -> WatershopConfig:
    """Create (or reuse) the demo workspace and land one story: counter footage, its ground truth and the POS exports.

    The week's visits are planned once (`synthetic.story`); footage is filmed only around them, and
    the till's sales are rung up while the filmed customers stand at the counter, plus a few
    walk-ins. Days whose footage came from another plan (an older demo, another window) are filmed again.
    """
    config_file = workspace / CONFIG_FILENAME
    if config_file.exists():
        config = load_config(config_file)
    else:
        config = init_workspace(workspace, shop_id=DEMO_SHOP, timezone="Asia/Kolkata",
                                partitions_start=start - timedelta(days=365))
    shop = config.shops[0]
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    cast, filmed, references = demo_cast(seed)
    _write_known_people(config, cast, references)
    story = plan_story(cast, shop, days, seed)
    landing = config.transactions_landing / shop.id
    for day in days:
        (landing / f"visits_{day.isoformat()}.csv").unlink(missing_ok=True)  # an older demo's export
        write_pos_export(story.sales_frame(shop.id, day, shop.prices).select(POS_COLUMNS),
                         landing / f"transactions_{day.isoformat()}.csv")
    gallery: Gallery | None = None
    for camera in shop.cameras:
        stale = [day for day in days if not _footage_is_current(config, camera, day, ground_truth_frame(story.day_visits(day)))]
        for day in stale:
            for old in (config.footage_root / camera / day.isoformat()).glob("*.mp4"):
                old.unlink()
        if not stale:
            continue
        clips = [clip for day in stale for clip in story.clips[day]]
        gallery = gallery or film_gallery(cast, filmed)
        write_clips(config.footage_root, camera, story.visits, clips, gallery, fps=DEMO_FPS, size=DEMO_SIZE,
                    workers=2, seed=seed)
        for day in stale:
            write_ground_truth(ground_truth_frame(story.day_visits(day)), ground_truth_path(config.footage_root, camera, day))
    broken = landing / f"pos_export_{end.isoformat()}.csv"
    broken.write_text(BROKEN_EXPORT.format(shop=shop.id, day=end.isoformat()))
    return config


# The supermarket: its last MARKET_DAYS days, each camera filmed for MARKET_FILM_S at the water shop's
# size (people are tracked on a 320 px wide frame anyway).
MARKET_SHOP = "demo_market"
MARKET_DAYS = 3
MARKET_FILM_S = 90.0
MARKET_EXPERIMENT = "demo_endcap"
EXPERIMENT_ZONES = ("shelf_fresh", "promo_fresh", "shelf_grocery", "promo_grocery")
EXPERIMENT_LIFT = 0.3  # treated zones' stops put 30 % more items in the basket


def market_shop() -> dict:
    """The supermarket's entry in `shops:`: zoned cameras, receipts from CSV exports, the zone table."""
    return {"id": MARKET_SHOP, "name": "Demo supermarket", "timezone": "Asia/Kolkata",
            "opening_time": "08:00", "closing_time": "22:00", "cameras": market_cameras(),
            "receipts": {"source": "csv", "zone_map": ZONE_MAP_FILE}}


def with_market_shop(text: str) -> str:
    """The config text with the supermarket appended to its `shops:` list (comments kept)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "shops:"), None)
    if start is None:
        raise ConfigError("the demo workspace's config has no top-level `shops:` list to add the supermarket to")
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in (" ", "\n", "#", "-", "")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    block = "".join(f"  {line}" for line in yaml.safe_dump([market_shop()], sort_keys=False).splitlines(keepends=True))
    return "".join([*lines[:end], block, *lines[end:]])


def add_market_shop(config_file: Path) -> WatershopConfig:
    """Add the supermarket to the demo workspace's config once (validated before it is written)."""
    config = load_config(config_file)
    if MARKET_SHOP in config.shop_ids:
        return config
    text = with_market_shop(config_file.read_text())
    tmp = config_file.with_name(f".{config_file.name}.check")
    try:
        tmp.write_text(text)
        load_config(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_text(config_file, text)
    return load_config(config_file)


def declare_experiment(workspace: Path, days: list[date], seed: int) -> pl.DataFrame | None:
    """The demo's switchback experiment over the supermarket's days (first day: pre-period) and its
    assignment; None with fewer than three days. Planned for another window (an older demo), the
    demo's own experiment is declared afresh rather than refused as a started one would be."""
    if len(days) < 3:
        return None
    spec = ExperimentSpec(name=MARKET_EXPERIMENT, zones=list(EXPERIMENT_ZONES), unit="zone-day",
                          pre_start=days[0], start=days[1], end=days[-1], seed=seed,
                          treatment="end-cap signage and a tasting stand")
    folder = experiment_dir(workspace, MARKET_EXPERIMENT)
    if (folder / SPEC_FILE).is_file() and load_spec(workspace, MARKET_EXPERIMENT) != spec:
        shutil.rmtree(folder)
    save_spec(workspace, spec)
    return assign(workspace, MARKET_EXPERIMENT)


def build_market(config_file: Path, end: date, seed: int, days: int = MARKET_DAYS) -> tuple[date, date]:
    """Add the supermarket to the demo workspace and land its last `days` days up to `end`: each
    camera's footage and ground truth, the receipts of the shoppers filmed paying, the zone table and
    an experiment. Returns the supermarket's (first, last) day."""
    config = add_market_shop(config_file)
    shop = config.shop(MARKET_SHOP)
    window = [end - timedelta(days=offset) for offset in reversed(range(days))]
    market_zone_map().write_csv(config.workspace_dir / ZONE_MAP_FILE)
    assignment = declare_experiment(config.workspace_dir, window, seed)
    landing = config.receipts_landing / MARKET_SHOP
    for number, day in enumerate(window):
        planned = plan_market_day(shop.tz, day, number, seed, duration_s=MARKET_FILM_S, fps=DEMO_FPS, size=DEMO_SIZE)
        truth = SupermarketTruth.concat([scene_truth(p.scene, p.duration_s) for p in planned])
        truth_folder = config.footage_root / "ground_truth" / "supermarket" / MARKET_SHOP / day.isoformat()
        footage = {p.camera: plain_path(config.footage_root, p.camera, p.local_start) for p in planned}
        current = (truth_folder / "zone_visits.parquet").exists() and all(f.exists() for f in footage.values()) \
            and pl.read_parquet(truth_folder / "zone_visits.parquet").equals(truth.zone_visits)
        if not current:
            for p in planned:
                for old in (config.footage_root / p.camera / day.isoformat()).glob("*.mp4"):
                    old.unlink()
                render_scene(p.scene, footage[p.camera], p.duration_s)
            truth.write(truth_folder)
        treated = frozenset() if assignment is None else frozenset(
            assignment.filter((pl.col("date") == day) & (pl.col("arm") == TREATMENT))["zone"])
        lines = market_receipts(planned, day, seed, treated, EXPERIMENT_LIFT)
        target = landing / f"receipts_{MARKET_SHOP}_{day.isoformat()}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp, lines=lines: lines.write_csv(tmp, float_precision=2))
    return window[0], window[-1]


def summary(config: WatershopConfig) -> str:
    """Where to look, then the water shop's week and (when the workspace has it) the supermarket's days."""
    if not config.marts_db.exists():
        return f"no marts were published (expected {config.marts_db})"
    shop = (DEMO_SHOP,)
    with connect_marts(config) as db:
        days, revenue, transactions = db.execute(
            "select count(*), sum(revenue), sum(transactions) from daily_revenue where shop_id = ?", shop
        ).fetchone()
        defaulters = db.execute("select count(*) from repeat_defaulters where shop_id = ?", shop).fetchone()[0]
        rejected = db.execute(
            "select coalesce(sum(rejected_rows), 0) from quarantine_summary where shop_id = ?", shop).fetchone()[0]
        visits, new, returning, visit_days = db.execute(
            "select sum(visits), sum(new_customers), sum(returning_customers), count(*) from daily_visits "
            "where shop_id = ?", shop
        ).fetchone()
        customers = db.execute("select count(*) from unique_customers where shop_id = ?", shop).fetchone()[0]
        linked = db.execute(
            "select count(visit_id), count(*) from transaction_visit_links where shop_id = ?", shop).fetchone()
        first_in = db.execute(
            "select min(first_entry::time), max(first_entry::time), min(last_exit::time), max(last_exit::time) "
            "from first_last_customer where shop_id = ?", shop
        ).fetchone()
        busiest = db.execute(
            "select hour from traffic_per_hour where shop_id = ? group by hour order by sum(visits) desc, hour limit 3",
            shop,
        ).fetchall()
        unpaid_visits = db.execute("select count(*) from visits_without_payment where shop_id = ?", shop).fetchone()[0]
        market = market_summary(db) if MARKET_SHOP in config.shop_ids else []
    alerts = _alert_counts(config)
    opening, closing = (f"{_hhmm(first_in[0])}-{_hhmm(first_in[1])}", f"{_hhmm(first_in[2])}-{_hhmm(first_in[3])}")
    per_day = f"{visits / visit_days:.0f}" if visits and visit_days else "0"
    return "\n".join(
        [
            "",
            f"marts (open read-only in a BI tool): {config.marts_db}",
            f"lake (Parquet):                       {config.lake_root}",
            f"Dagster UI:                           DAGSTER_HOME={config.dagster_home} dagster dev -w workspace.yaml",
            f"dashboard:                            watershop dashboard --config {config.workspace_dir / CONFIG_FILENAME}",
            "",
            f"water shop ({DEMO_SHOP}; dashboard pages Overview, Unpaid & defaulters, Top customers, Customer history):",
            f"{days} shop-days, {transactions} transactions, revenue {revenue:,.2f}",
            f"repeat defaulters: {defaulters}; rejected input rows (quarantined): {rejected}",
            f"visits seen by the camera: {visits or 0} (~{per_day} a day); distinct customers: {customers}; "
            f"new {new or 0} / returning {returning or 0} customer-days",
            f"transactions linked to a visit: {linked[0]} of {linked[1]} (the rest: walk-ins the camera never saw); "
            f"visits without a purchase: {unpaid_visits}",
            f"first customer in: {opening}; last customer out: {closing}; busiest hours: "
            + ", ".join(f"{hour:02d}:00" for (hour,) in busiest),
            "alerts: " + (", ".join(f"{count} {role}" for role, count in sorted(alerts.items())) or "none"),
            *market,
        ]
    )


def market_summary(db) -> list[str]:
    """The supermarket's lines of the summary: behaviour beside sales, per zone, and the experiment."""
    shop = (MARKET_SHOP,)
    days, visitors, zone_visitors, receipts, sales = db.execute(
        "select count(*), sum(store_visitors), sum(zone_visitors), sum(receipts), sum(sales) "
        "from fct_store_day_behaviour where shop_id = ?", shop).fetchone()
    zones = db.execute(
        "select zone, count(*), avg(dwell_s) from zone_visits where shop_id = ? and is_customer and kind <> 'entrance' "
        "group by zone order by zone", shop).fetchall()
    zone_sales = dict(db.execute(
        "select zone, sum(sales) from fct_zone_hour where shop_id = ? group by zone", shop).fetchall())
    loitering = db.execute("select count(*) from loitering_events where shop_id = ?", shop).fetchone()[0]
    fits = db.execute(
        "select zone, correlation from zone_dwell_sales_correlation where shop_id = ? and grain = 'hour' "
        "and correlation is not null order by zone", shop).fetchall()
    experiments = db.execute(
        "select experiment, status, effect, ci_low, ci_high, p_value from experiment_results where shop_id = ? "
        "or shop_id is null order by experiment", shop).fetchall()
    conversion = f"{receipts / visitors:.0%}" if visitors else "n/a"
    lines = [
        "",
        f"supermarket ({MARKET_SHOP}; dashboard page Zones; marts fct_store_day_behaviour, fct_zone_hour, "
        "zone_visits, zone_dwell_sales_correlation, receipt_lines, experiment_results; heatmaps in each day's "
        "report folder):",
        f"{days or 0} shop-days filmed {MARKET_FILM_S / 60:.1f} min per camera; store visitors (entries) {visitors or 0}, "
        f"zone visitors (tracks past the entrance) {zone_visitors or 0}; {receipts or 0} receipts, sales {float(sales or 0):,.2f}; "
        f"conversion {conversion}; loitering events {loitering}",
        "zones (customer visits, mean dwell, sales): " + "; ".join(
            f"{zone} {n}, {dwell:.0f} s, {float(zone_sales.get(zone) or 0):,.2f}" for zone, n, dwell in zones),
        "dwell vs sales per zone-hour (r): " + (", ".join(f"{zone} {r:+.2f}" for zone, r in fits) or "n/a"),
    ]
    for name, status, effect, low, high, p in experiments:
        verdict = " — inconclusive: a demo's few days cannot tell; a real test runs for weeks" if (
            status == "analysed" and low <= 0 <= high) else ""
        lines.append(f"experiment {name}: " + (f"effect {effect:+.0%} (95% CI {low:+.0%} to {high:+.0%}), p = {p:.2f}"
                                                + verdict if status == "analysed" else status))
    return lines


def _alert_counts(config: WatershopConfig) -> dict[str, int]:
    """Alerts raised (role -> count) from the lake's alerts dataset."""
    files = list((config.lake_root / "alerts").glob("shop_id=*/date=*/*.parquet"))
    if not files:
        return {}
    counts = pl.concat([pl.read_parquet(f, columns=["role"]) for f in files])["role"].value_counts()
    return dict(zip(counts["role"].to_list(), counts["count"].to_list(), strict=True))


def _hhmm(moment) -> str:
    return moment.strftime("%H:%M") if moment is not None else "--:--"
