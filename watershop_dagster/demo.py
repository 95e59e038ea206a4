"""The built-in demo: a water-can shop's week, filmed and rung up as one story (and one broken export)."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from watershop_dagster.config import CONFIG_FILENAME, POS_COLUMNS, WatershopConfig, init_workspace, load_config
from watershop_dagster.fixtures import fixtures_dir
from watershop_dagster.pos.generate import write_pos_export
from watershop_dagster.synthetic.footage import (
    ground_truth_frame,
    ground_truth_path,
    read_ground_truth,
    write_clips,
    write_ground_truth,
)
from watershop_dagster.synthetic.gallery import Gallery, crops_of, default_gallery, gallery_photos
from watershop_dagster.synthetic.story import REFERENCE_PHOTOS, Cast, choose_cast, plan_story
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


def summary(config: WatershopConfig) -> str:
    if not config.marts_db.exists():
        return f"no marts were published (expected {config.marts_db})"
    with connect_marts(config) as db:
        days, revenue, transactions = db.execute(
            "select count(*), sum(revenue), sum(transactions) from daily_revenue"
        ).fetchone()
        defaulters = db.execute("select count(*) from repeat_defaulters").fetchone()[0]
        rejected = db.execute("select coalesce(sum(rejected_rows), 0) from quarantine_summary").fetchone()[0]
        visits, new, returning, visit_days = db.execute(
            "select sum(visits), sum(new_customers), sum(returning_customers), count(*) from daily_visits"
        ).fetchone()
        customers = db.execute("select count(*) from unique_customers").fetchone()[0]
        linked = db.execute("select count(visit_id), count(*) from transaction_visit_links").fetchone()
        first_in = db.execute(
            "select min(first_entry::time), max(first_entry::time), min(last_exit::time), max(last_exit::time) "
            "from first_last_customer"
        ).fetchone()
        busiest = db.execute(
            "select hour from traffic_per_hour group by hour order by sum(visits) desc, hour limit 3"
        ).fetchall()
        unpaid_visits = db.execute("select count(*) from visits_without_payment").fetchone()[0]
    alerts = _alert_counts(config)
    opening, closing = (f"{_hhmm(first_in[0])}-{_hhmm(first_in[1])}", f"{_hhmm(first_in[2])}-{_hhmm(first_in[3])}")
    per_day = f"{visits / visit_days:.0f}" if visits and visit_days else "0"
    return "\n".join(
        [
            "",
            f"marts (open read-only in a BI tool): {config.marts_db}",
            f"lake (Parquet):                       {config.lake_root}",
            f"Dagster UI:                           DAGSTER_HOME={config.dagster_home} dagster dev -w workspace.yaml",
            f"{days} shop-days, {transactions} transactions, revenue {revenue:,.2f}",
            f"repeat defaulters: {defaulters}; rejected input rows (quarantined): {rejected}",
            f"visits seen by the camera: {visits or 0} (~{per_day} a day); distinct customers: {customers}; "
            f"new {new or 0} / returning {returning or 0} customer-days",
            f"transactions linked to a visit: {linked[0]} of {linked[1]} (the rest: walk-ins the camera never saw); "
            f"visits without a purchase: {unpaid_visits}",
            f"first customer in: {opening}; last customer out: {closing}; busiest hours: "
            + ", ".join(f"{hour:02d}:00" for (hour,) in busiest),
            "alerts: " + (", ".join(f"{count} {role}" for role, count in sorted(alerts.items())) or "none"),
        ]
    )


def _alert_counts(config: WatershopConfig) -> dict[str, int]:
    """Alerts raised (role -> count) from the lake's alerts dataset."""
    files = list((config.lake_root / "alerts").glob("shop_id=*/date=*/*.parquet"))
    if not files:
        return {}
    counts = pl.concat([pl.read_parquet(f, columns=["role"]) for f in files])["role"].value_counts()
    return dict(zip(counts["role"].to_list(), counts["count"].to_list(), strict=True))


def _hhmm(moment) -> str:
    return moment.strftime("%H:%M") if moment is not None else "--:--"
