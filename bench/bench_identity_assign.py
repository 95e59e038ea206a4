"""Identity assignment on unseen faces without footage: many seeds in minutes, for tuning.

`bench_identity_unseen.py` renders footage and runs vision (~2 CPU-min per run for 6 customer
visits), too slow to compare assignment rules over many seeds. This bench keeps its galleries,
leave-photos-out staff enrolment, photo-per-day plans and per-day looks (the same functions), but
skips rendering and vision: every visit is one track of `EMBEDDINGS_PER_TRACK` embeddings of the
day's photo under the day's look, shrunk to camera-sized faces (`FACE_PX`), and the days go
through `identity.registry.assign_identities` in order, each against the ledger of the days before,
read through the customer merges decided so far, and then `identity.merges.find_merges` (as the
pipeline does; `--no-merges` leaves merges out). Ids are scored through the final merges.

Scored per (gallery, seed): pairwise identity F1 over customer visits, distinct customers vs
truth, staff appearances counted as a customer. Printed per run, then mean ± sd over runs.

    .venv/bin/python bench/bench_identity_assign.py --seeds 11 12 13 [--days 3] [--galleries 2]
        [--calibrate] [--no-merges]

Calibrations (`--calibrate`, as in bench_identity_unseen) and embeddings are cached in --workdir.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_identity_unseen as unseen  # noqa: E402

from watershop_dagster import catalog  # noqa: E402

#: the camera-sized face widths a track's embeddings are made at (one embedding each)
FACE_PX = (60, 72, 84)
EMBEDDINGS_PER_TRACK = len(FACE_PX)
SHOP = "s1"
#: chance a customer comes on a given day; visits that day: 1 or 2
PRESENT_P = 0.7


def camera_embeddings(crop: np.ndarray, look: dict, cache: dict, key) -> list[np.ndarray]:
    """The photo under the day's look, embedded at each FACE_PX (faces not found are skipped)."""
    if key in cache:
        return cache[key]
    img = unseen.apply_look(crop, look)
    out = []
    for px in FACE_PX:
        vector = unseen.embed_at_face_size(img, px)
        if vector is not None:
            out.append(vector)
    cache[key] = out
    return out


def day_plan(gallery: dict, staff: str, plan: dict, seed: int, d: int) -> list[tuple[str, str, Path]]:
    """(person, role, photo) per visit of day d, in time order."""
    rng = np.random.default_rng([seed, 31, d])
    visits = []
    for person in sorted(gallery):
        photos = plan["days"][d].get(person) or []
        if not photos:
            continue
        if person == staff:
            n = 2
        elif rng.random() < PRESENT_P:
            n = int(rng.integers(1, 3))
        else:
            continue
        for _ in range(n):
            visits.append((person, "staff" if person == staff else "customer", photos[int(rng.integers(len(photos)))]))
    order = rng.permutation(len(visits))
    return [visits[i] for i in order]


def run_one(gallery: dict, g: int, seed: int, args, crops: dict, thresholds, cache: dict) -> dict:
    from watershop_dagster.identity.known_people import scan_known_people
    from watershop_dagster.identity.merges import (
        CUSTOMER_MERGES_SCHEMA,
        find_merges,
        ledger_as_survivors,
        survivor_map,
    )
    from watershop_dagster.identity.registry import LEDGER_SCHEMA, assign_identities
    from watershop_dagster.synthetic.gallery import save_gallery

    staff = next(p for p in sorted(gallery) if len(gallery[p]) >= args.enrol_photos + 2)
    plan = unseen.photo_plan(gallery, staff, seed, args.days, args.enrol_photos)
    with tempfile.TemporaryDirectory() as tmp:
        save_gallery({staff: [crops[f] for f in plan["enrol"] if f in crops]}, Path(tmp) / "staff", [staff])
        known = scan_known_people(Path(tmp)).people
    ledger = pl.DataFrame(schema={**LEDGER_SCHEMA, "date": pl.Date})
    merges = pl.DataFrame(schema=CUSTOMER_MERGES_SCHEMA)
    truth_rows = []  # (track_id, person, role)
    decided, recognition = [], []
    for d in range(args.days):
        day = date(2025, 3, 3) + timedelta(days=d)
        base = datetime(day.year, day.month, day.day, 4, 0, tzinfo=UTC)
        emb, trk = [], []
        for v, (person, role, photo) in enumerate(day_plan(gallery, staff, plan, seed, d)):
            k = sorted(gallery).index(person)
            look = unseen.day_look(np.random.default_rng([seed, 9, d, k]))
            vectors = camera_embeddings(crops[photo], look, cache, (seed, d, k, str(photo)))
            if not vectors:
                continue
            tid = f"t{d}-{v:03d}"
            start = base + timedelta(seconds=120 * v)
            for e, vec in enumerate(vectors):
                emb.append({"embedding_id": f"{tid}-e{e}", "track_id": tid, "detection_id": f"{tid}-d{e}",
                            "camera": "counter", "ts_utc": start + timedelta(seconds=10 * e), "quality": 0.8,
                            "embedding": vec})
            trk.append({"track_id": tid, "camera": "counter", "start_utc": start,
                        "end_utc": start + timedelta(seconds=60), "n_detections": 30, "n_embeddings": len(vectors),
                        "best_quality": 0.8})
            truth_rows.append((tid, person, role))
        embeddings = pl.DataFrame(emb, schema=catalog.FACE_EMBEDDINGS.schema)
        tracks = pl.DataFrame(trk, schema=catalog.FACE_TRACKS.schema)
        # as identity.pipeline.build_customer_registry: ids read through earlier merges, then the day's merges
        ledger = ledger_as_survivors(ledger, survivor_map(merges))
        out = assign_identities(SHOP, day, embeddings, tracks, known, ledger.drop("date"), thresholds)
        ledger = pl.concat([ledger, out.ledger_rows.with_columns(pl.lit(day).alias("date"))])
        if args.merges:
            merges = pl.concat([merges, find_merges(ledger, day, thresholds)])
        decided += out.identities.select("track_id", "customer_id", "role").rows()
        recognition.append(out.recognition)
    survivors = survivor_map(merges)  # scored as the marts name people
    decided = [(tid, survivors.get(cid, cid), role) for tid, cid, role in decided]
    return {"gallery": g, "seed": seed, "staff": staff, "figures": score(truth_rows, decided),
            "errors": splits(truth_rows, pl.concat(recognition)), "merges": merges.to_dicts()}


def splits(truth_rows: list[tuple], recognition: pl.DataFrame) -> list[dict]:
    """Customer visits that got a second id for their person: the decision and its distances."""
    person = {tid: p for tid, p, role in truth_rows}
    first_id: dict[str, str] = {}
    out = []
    for row in recognition.sort("start_utc").iter_rows(named=True):
        p, cid = person.get(row["track_id"]), row["customer_id"]
        if cid is None or p is None:
            continue
        if first_id.setdefault(p, cid) != cid and row["decision"] in ("new", "ambiguous"):
            out.append({"person": p, "track": row["track_id"], "decision": row["decision"],
                        "best": round(row["best_distance"] or -1, 3), "best_is_own": row["best_match"] == first_id[p],
                        "second": round(row["second_distance"] or -1, 3), "known": round(row["known_distance"] or -1, 3)})
    return out


def score(truth_rows: list[tuple], decided: list[tuple]) -> dict:
    """Pairwise F1 over true customer visits, distinct-customer error, staff counted as customer."""
    got = {tid: (cid, role) for tid, cid, role in decided}
    customers = [(person, got.get(tid, (None, None))[0]) for tid, person, role in truth_rows if role == "customer"]
    tp = fp = fn = 0
    for a in range(len(customers)):
        for b in range(a + 1, len(customers)):
            same_t = customers[a][0] == customers[b][0]
            same_p = customers[a][1] is not None and customers[a][1] == customers[b][1]
            tp += same_t and same_p
            fp += same_p and not same_t
            fn += same_t and not same_p
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    true_n = len({person for person, _ in customers})
    ids = {got[tid][0] for tid, _, role in truth_rows if tid in got and got[tid][1] == "customer"}
    staff_wrong = sum(1 for tid, _, role in truth_rows if role == "staff" and got.get(tid, (None, None))[1] != "staff")
    return {"pairwise_precision": round(p, 4), "pairwise_recall": round(r, 4),
            "pairwise_f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "unique_customer_error_pct": round(100.0 * (len(ids) - true_n) / max(true_n, 1), 1),
            "staff_as_customer": staff_wrong, "customer_visits": len(customers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--galleries", type=int, default=2)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--enrol-photos", type=int, default=2)
    parser.add_argument("--calibrate", action="store_true", help="thresholds from the OTHER galleries' people")
    parser.add_argument("--no-merges", dest="merges", action="store_false",
                        help="score without customer merges (identity.merges), as before they existed")
    parser.add_argument("--calibration-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "identity_assign",
                        help="where calibrations are cached")
    args = parser.parse_args()

    from watershop_dagster.config import Thresholds
    from watershop_dagster.fixtures import fixtures_dir
    from watershop_dagster.identity.calibration import Calibration
    from watershop_dagster.synthetic.gallery import crops_of, gallery_photos

    photos = gallery_photos(fixtures_dir() / "faces")
    galleries = unseen.split_galleries(photos, args.galleries, args.enrol_photos)
    crops = {f: got[0] for files in photos.values() for f in files if (got := crops_of([f]))}
    runs = []
    cache_file = args.workdir / "embeddings.pkl"  # camera embeddings depend only on (seed, day, person, photo)
    cache = pickle.loads(cache_file.read_bytes()) if cache_file.exists() else {}
    for g, gallery in enumerate(galleries):
        thresholds = Thresholds()
        if args.calibrate:
            others = {p: f for h, other in enumerate(galleries) if h != g for p, f in other.items()}
            cal_file = args.workdir / f"calibration_g{g}_{'_'.join(map(str, args.calibration_seeds))}.json"
            if cal_file.exists():
                cal = Calibration(**json.loads(cal_file.read_text()))
            else:
                cal = unseen.measured_calibration(others, crops, args.calibration_seeds)
                if cal is not None:
                    cal_file.parent.mkdir(parents=True, exist_ok=True)
                    cal_file.write_text(json.dumps(asdict(cal)))
            if cal is not None:
                thresholds = Thresholds(face_match_distance=cal.face_match_distance,
                                        face_ambiguous_margin=cal.face_ambiguous_margin)
        for seed in args.seeds:
            run = run_one(gallery, g, seed, args, crops, thresholds, cache)
            runs.append(run)
            args.workdir.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(pickle.dumps(cache))
            print(f"gallery {g} seed {seed} thr {thresholds.face_match_distance}/{thresholds.face_ambiguous_margin}: "
                  f"{run['figures']}", flush=True)
            for error in run["errors"]:
                print(f"    {error}", flush=True)
            for merge in run["merges"]:
                print(f"    merged {merge}", flush=True)
    print(f"\n{len(runs)} runs, {args.days} days: mean ± sd [min-max]")
    for key in runs[0]["figures"]:
        values = [r["figures"][key] for r in runs]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {key:28s} {statistics.fmean(values):8.3f} ± {sd:.3f}  [{min(values)}-{max(values)}]")


if __name__ == "__main__":
    main()
