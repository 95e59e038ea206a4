"""Erasure is crash-safe (a real SIGKILL at every step boundary, then a re-run), resumable, idempotent
and verified: no trace in the lake (the alert log too), the Frigate landing, known people or the marts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.test_identity_privacy import (
    SPECS,
    lake_mentions,
    write_crops,
    write_transactions,
)
from tests.test_identity_registry import (
    DAY1,
    DAY2,
    DAY3,
    PHOTOS_PER_PERSON,
    SHOP,
    _photo_vectors,
    ids_by_track,
    known_frame,
    no_known,
    write_vision_day,
)
from watershop_dagster import catalog, lake
from watershop_dagster.alerts.log import DELIVERED, delivery_row, read_log, write_rows
from watershop_dagster.alerts.model import Alert
from watershop_dagster.config import WatershopConfig, load_config
from watershop_dagster.frigate.landing import encode_line
from watershop_dagster.identity import pipeline as ident
from watershop_dagster.identity.erasure import (
    KILL_AFTER_ENV,
    ErasureIncomplete,
    finish_pending_erasures,
    forget_customer,
    journal_path,
    marts_mentions,
    verify_erased,
)
from watershop_dagster.identity.privacy import (
    ErasurePending,
    erasure_journals,
    read_audit,
    was_erased,
)
from watershop_dagster.orchestration.runner import run_range
from watershop_dagster.serving.builds import current_build, read_build
from watershop_dagster.warehouse import rebuild_marts, switch_current

VIP = "John_Savage"


@pytest.fixture(scope="session")
def vectors(faces_dir):
    """person -> (5, 128) embeddings of the shared fixture faces (as test_identity_registry's photo_vectors)."""
    found = _photo_vectors(str(faces_dir))
    if any(len(v) < PHOTOS_PER_PERSON for v in found.values()):
        pytest.skip("fixture photos without a usable face")
    return found


def workspace(root: Path, vectors, known: dict[str, str] | None = None) -> WatershopConfig:
    """A one-shop workspace (watershop.yaml, so the CLI can open it) with two days of faces, crops,
    transactions, identities, visits and links."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "watershop.yaml").write_text(f"shops:\n  - id: {SHOP}\n    timezone: Asia/Kolkata\n"
                                         "    cameras: [counter, door]\n")
    config = load_config(root / "watershop.yaml")
    people = known_frame(vectors, known) if known else no_known()
    for day, specs in SPECS.items():
        tracks = write_vision_day(config, day, specs, vectors)
        write_crops(config, day, [f"{t}-d0" for t in tracks["track_id"]])
        write_transactions(config, day, [s["start"] + 20 for s in specs])
        ident.build_customer_registry(config, SHOP, day, known=people)
        ident.build_visits(config, SHOP, day)
        ident.link_transactions(config, SHOP, day)
    return config


def lake_frames(config: WatershopConfig) -> dict[str, pl.DataFrame]:
    """Every Parquet file of the lake but the audit log (its ids and salts differ per erasure)."""
    return {str(p.relative_to(config.lake_root)): pl.read_parquet(p) for p in sorted(config.lake_root.rglob("*.parquet"))
            if catalog.PRIVACY_AUDIT.name not in p.parts}


def lake_files(config: WatershopConfig) -> set[str]:
    return {str(p.relative_to(config.lake_root)) for p in config.lake_root.rglob("*") if p.is_file()
            and catalog.PRIVACY_AUDIT.name not in p.parts}


def assert_same_lake(a: WatershopConfig, b: WatershopConfig) -> None:
    assert lake_files(a) == lake_files(b)
    frames_a, frames_b = lake_frames(a), lake_frames(b)
    for name, frame in frames_a.items():
        assert frame.equals(frames_b[name]), name


def forget_cli(config: WatershopConfig, customer_id: str, kill_after: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KILL_AFTER_ENV}
    if kill_after is not None:
        env[KILL_AFTER_ENV] = str(kill_after)
    return subprocess.run([sys.executable, "-m", "watershop_dagster.cli", "forget", "--config",
                           str(config.workspace_dir / "watershop.yaml"), customer_id],
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_kill_at_every_step_boundary_then_a_rerun_erases_what_an_uninterrupted_erasure_does(vectors, tmp_path):
    killed = workspace(tmp_path / "killed", vectors)
    shutil.copytree(tmp_path / "killed", tmp_path / "clean")
    clean = load_config(tmp_path / "clean" / "watershop.yaml")
    salley = ids_by_track(killed, DAY1)["t0501-000"]
    others = {cid for day in SPECS for cid in ids_by_track(killed, day).values()} - {salley}
    registry_before = lake.read_dataset(killed.lake_root, "customer_registry", shop_id=SHOP, date=date(2024, 5, 2))

    forget_customer(clean, SHOP, salley)  # the reference: one uninterrupted erasure

    journal = journal_path(killed, SHOP, salley)
    kills, done = 0, []
    while (result := forget_cli(killed, salley, kill_after=1)).returncode == -9:  # each process: one more step
        kills += 1
        now = json.loads(journal.read_text())["done"]
        assert now[:len(done)] == done and len(now) == len(done) + (kills > 1)  # exactly one boundary further
        done = now
        if kills == 3:  # half erased: nothing may build identities of the shop now
            with pytest.raises(ErasurePending):
                ident.build_customer_registry(killed, SHOP, DAY1, known=no_known())
    assert result.returncode == 0, result.stderr
    assert kills == len(done) + 1 and len(done) > 20  # the plan, then every step: each boundary killed once
    assert "resumed an interrupted erasure" in result.stdout and "verified" in result.stdout
    assert not journal.exists() and erasure_journals(killed) == []

    assert_same_lake(killed, clean)
    assert lake_mentions(killed, {salley}) == [] and was_erased(killed, SHOP, salley)
    assert read_audit(killed).height == 1  # the audit row written once, whatever the kills
    registry = lake.read_dataset(killed.lake_root, "customer_registry", shop_id=SHOP, date=date(2024, 5, 2))
    untouched = registry_before.filter(pl.col("customer_id").is_in(sorted(others)))
    assert registry.sort("customer_id").equals(untouched.sort("customer_id")) and untouched.height == len(others)

    again = forget_cli(killed, salley)  # idempotent: nothing left to erase, nothing else touched
    assert again.returncode == 0 and "no data found" in again.stdout
    assert_same_lake(killed, clean)


@pytest.mark.slow  # Dagster runs and a dbt build
def test_watershop_run_finishes_an_interrupted_erasure_before_any_run(vectors, tmp_path):
    config = workspace(tmp_path, vectors)
    salley = ids_by_track(config, DAY1)["t0501-000"]
    assert forget_cli(config, salley, kill_after=4).returncode == -9  # the plan and three steps done
    (journal,) = erasure_journals(config)
    assert json.loads(journal.read_text())["done"] == json.loads(journal.read_text())["steps"][:3]
    with pytest.raises(ErasurePending):  # the daemon's identity runs refuse meanwhile
        ident.build_visits(config, SHOP, DAY1)

    runs = run_range(DAY3, DAY3, config.workspace_dir / "watershop.yaml")  # a new day: footage-less runs

    assert [r.success for r in runs] == [True] and erasure_journals(config) == []
    assert lake_mentions(config, {salley}) == [] and was_erased(config, SHOP, salley)
    assert marts_mentions(config.marts_db, [salley]) == [] and finish_pending_erasures(config) == []


def frigate_line(event_id: str, sub_label, t: float) -> str:
    payload = {"type": "update", "before": {"id": event_id, "camera": "door", "sub_label": sub_label},
               "after": {"id": event_id, "camera": "door", "start_time": t, "frame_time": t, "current_zones": [],
                         "sub_label": sub_label}}
    return encode_line(t, "frigate/events", json.dumps(payload)).decode()


def test_a_known_person_is_erased_from_frigate_landing_alert_log_behaviour_and_known_people(vectors, tmp_path):
    config = workspace(tmp_path, vectors, known={VIP: "vip", "John_Schneider": "blocked"})
    vip_id = ids_by_track(config, DAY1)["t0501-001"]
    assert vip_id.startswith("k_")
    for person in (VIP, "John_Schneider"):
        role = "vip" if person == VIP else "blocked"
        (config.known_people_dir / role / person).mkdir(parents=True)
        (config.known_people_dir / role / person / "3.jpg").write_bytes(b"\xff\xd8jpeg")
    landing = config.frigate_landing / SHOP / "door" / f"{DAY1}.ndjson"
    landing.parent.mkdir(parents=True)
    t = 1_714_536_000.0
    landing.write_text(frigate_line("e1", [VIP, 0.91], t) + frigate_line("e2", "john_schneider", t + 1)
                       + frigate_line("e3", None, t + 2))
    alerts = [Alert(alert_id=a, source="frigate", rule="r", kind=kind, shop_id=SHOP, camera="door", event_id=e,
                    subject=key or e, ts=t, triggered_at=t, person_key=key, role=key and key.split("/")[0])
              for a, kind, e, key in (("a1", "known_person", "e1", f"vip/{VIP}"),
                                      ("a2", "known_person", "e2", "blocked/John_Schneider"),
                                      ("a3", "loitering", "e3", None))]
    write_rows(config, SHOP, {DAY1: [delivery_row(alert, "mqtt", DELIVERED, 1, t) for alert in alerts]})
    keys = {"shop_id": SHOP, "date": DAY1, "camera": "door"}
    tracks = pl.DataFrame({"track_id": ["p1", "p2", "p3", "p4"],
                           "identity": [vip_id, f"vip/{VIP}", "blocked/John_Schneider", None]})
    lake.write_dataset(tracks, config.lake_root, catalog.PERSON_TRACKS, **keys)
    journal = {"shop_id": SHOP, "customer_id": vip_id, "person_key": f"vip/{VIP}", "sub_labels": [VIP.lower()],
               "tracks": [], "visits": [], "detections": [], "embeddings": []}
    assert len(verify_erased(config, journal)) >= 6  # registry, visits, alerts, landing, alert log, folder, ...

    report = forget_customer(config, SHOP, vip_id)

    assert report.counts["frigate_landing_lines"] == 1
    assert report.counts["person_tracks"] == 2 and report.counts["alert_deliveries"] == 1
    assert report.counts["alerts"] >= 1 and report.counts["known_people_photos"] == 1
    assert verify_erased(config, journal) == []
    assert VIP not in landing.read_text() and VIP.lower() not in landing.read_text().lower()
    lines = [json.loads(json.loads(line)["payload"]) for line in landing.read_text().splitlines()]
    assert [m["after"]["sub_label"] for m in lines] == [None, "john_schneider", None]  # the track stays, anonymous
    assert sorted(read_log(config, SHOP)["alert_id"].to_list()) == ["a2", "a3"]
    assert not (config.known_people_dir / "vip" / VIP).exists()
    assert (config.known_people_dir / "blocked" / "John_Schneider" / "3.jpg").exists()
    person_tracks = lake.read_dataset(config.lake_root, catalog.PERSON_TRACKS, **keys)
    assert person_tracks["identity"].to_list() == [None, None, "blocked/John_Schneider", None]
    assert lake_mentions(config, {vip_id, f"vip/{VIP}"}) == []
    # the blocked person is untouched everywhere
    assert lake_mentions(config, {"blocked/John_Schneider"})


@pytest.mark.slow
def test_forget_rebuilds_the_marts_and_fails_loudly_on_a_served_mart_it_cannot_rebuild(vectors, tmp_path):
    config = workspace(tmp_path, vectors)
    salley = ids_by_track(config, DAY1)["t0501-000"]
    rebuild_marts(config)
    assert marts_mentions(config.marts_db, [salley])  # the marts name her before
    served = current_build(config.warehouse_dir)  # the served build (marts.duckdb holds views over it)
    stale = tmp_path / served.path.name
    shutil.copytree(served.path, stale)

    report = forget_customer(config, SHOP, salley)

    assert report.marts_rebuilt and marts_mentions(config.marts_db, [salley]) == []
    assert marts_mentions(config.marts_db, sorted(set(ids_by_track(config, DAY1).values()) - {None}))  # others stay
    # served marts that cannot be rebuilt (no build file) still name her: the erasure fails loudly
    assert not served.path.exists()  # the erasure deleted the builds that named her
    shutil.copytree(stale, served.path)
    switch_current(config.warehouse_dir, read_build(served.path))
    shutil.move(config.build_db, tmp_path / "build.duckdb")
    with pytest.raises(ErasureIncomplete, match="served marts"):
        forget_customer(config, SHOP, salley)
    assert erasure_journals(config)  # kept, every step reopened
    shutil.move(tmp_path / "build.duckdb", config.build_db)
    forget_customer(config, SHOP, salley)
    assert marts_mentions(config.marts_db, [salley]) == [] and erasure_journals(config) == []


def test_erasing_a_merged_person_erases_every_id_they_had(vectors, tmp_path):
    """Salley was given two ids, later merged (customer_merges): forgetting either id erases both,
    the merge record with them; the other customer stays."""
    config = workspace(tmp_path / "w", vectors)
    salley = ids_by_track(config, DAY1)["t0501-000"]
    savage = ids_by_track(config, DAY1)["t0501-001"]
    schneider = ids_by_track(config, DAY2)["t0502-001"]
    merge = pl.DataFrame([{"customer_id": schneider, "surviving_id": salley, "first_seen": DAY2, "linkage": 0.46,
                           "runner_up": 0.7, "n_exemplars": 3, "n_exemplars_surviving": 3}],
                         schema=catalog.CUSTOMER_MERGES.schema)
    lake.write_dataset(merge, config.lake_root, catalog.CUSTOMER_MERGES, shop_id=SHOP, date=DAY2)
    shutil.copytree(tmp_path / "w", tmp_path / "by_merged_id")
    by_merged_id = load_config(tmp_path / "by_merged_id" / "watershop.yaml")

    forget_customer(config, SHOP, salley)
    forget_customer(by_merged_id, SHOP, schneider)
    for erased in (config, by_merged_id):
        assert lake_mentions(erased, {salley, schneider}) == []
        assert lake.read_dataset(erased.lake_root, catalog.CUSTOMER_MERGES, shop_id=SHOP, date=DAY2).is_empty()
        assert savage in set(ids_by_track(erased, DAY1).values())
    assert_same_lake(config, by_merged_id)


def test_a_staff_member_is_erased_by_their_key(vectors, tmp_path):
    """Staff have no customer id: `watershop forget staff/<name>` finds them by their known-person key
    and erases their faces, visits, behaviour rows and folder; the customers stay."""
    config = workspace(tmp_path, vectors, known={"John_Savage": "staff"})
    key = "staff/John_Savage"
    with (config.workspace_dir / "watershop.yaml").open("a") as yaml_file:
        yaml_file.write(f"frigate:\n  sub_labels: {{jsavage: {key}}}\n")
    (config.known_people_dir / key).mkdir(parents=True)
    (config.known_people_dir / key / "3.jpg").write_bytes(b"\xff\xd8jpeg")
    staff_track = "t0501-001"
    assert ids_by_track(config, DAY1).get(staff_track) is None  # no customer id
    keys = {"shop_id": SHOP, "date": DAY1, "camera": "door"}
    lake.write_dataset(pl.DataFrame({"track_id": ["p1", "p2"], "identity": [key, None]}), config.lake_root,
                       catalog.PERSON_TRACKS, **keys)
    visits = lake.read_dataset(config.lake_root, catalog.VISITS, shop_id=SHOP, date=DAY1)
    assert visits.filter(pl.col("person_key") == key).height == 1
    customers = (set(ids_by_track(config, DAY1).values()) | set(ids_by_track(config, DAY2).values())) - {None}

    result = forget_cli(config, key)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "frigate.sub_labels" in result.stderr and "jsavage" in result.stderr  # the config is the user's to edit
    assert lake_mentions(config, {key, staff_track}) == []
    assert not (config.known_people_dir / key).exists()
    assert lake.read_dataset(config.lake_root, catalog.PERSON_TRACKS, **keys)["identity"].to_list() == [None, None]
    assert (set(ids_by_track(config, DAY1).values()) | set(ids_by_track(config, DAY2).values())) - {None} == customers
    assert was_erased(config, SHOP, key)
