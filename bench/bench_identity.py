"""Identity benchmark: synthetic shop days → real vision pipeline → registry, visits, POS links.

Builds `--days` days of synthetic counter-camera footage from the shared face fixtures
(fixtures_dir()/faces: 10 people; `--staff` works at the side desk and is also placed in
known_people/staff), runs `process_video` on each file, writes the vision datasets to a lake and
runs build_customer_registry → build_visits → link_transactions day by day, in order. One POS
transaction per true customer visit, at a random moment while the person stands at the counter;
the POS never names the person (about half the people carry a pseudonymous loyalty id, to check
pos_customer_map).

Figures (staff excluded everywhere):
* visit recall / precision — a detected visit matches a true one (one-to-one, greedy by overlap)
  when the overlap of their spans is >= 50% of the longer of the two spans;
* pairwise precision / recall / F1 of customer identity over matched visits (a pair is
  "same" in truth when it is the same person, predicted when it has the same customer_id);
* unique-customer count error (distinct customer_ids vs distinct true people);
* MAE of entry and exit times over matched visits;
* share of transactions linked to the visit of the right person.

What "exit" means: the camera sees faces, and in the synthetic footage a face is visible only
from `entry_utc` to `counter_end_utc` — people then turn round and walk out with their back to
the camera (`exit_utc`, 4-7 s later). A visit's exit_utc is therefore the last time the face was
seen, and the true span used for matching and for the exit error is [entry_utc,
counter_end_utc]. The error against the door time (`exit_utc`) is printed for information.

    .venv/bin/python bench/bench_identity.py [--days 3] [--minutes 40] [--visits-per-hour 12]
        [--size 960x540] [--fps 12] [--workers 2] [--workdir bench/out/identity] [--reuse]

`--reuse` keeps footage and vision outputs already in the workdir (same parameters) and only
re-runs the identity steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from watershop_dagster import catalog, lake  # noqa: E402
from watershop_dagster.config import ShopConfig, WatershopConfig  # noqa: E402

SHOP = "bench"
CAMERA = "counter"


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def make_config(workdir: Path) -> WatershopConfig:
    return WatershopConfig(
        shops=[ShopConfig(id=SHOP, timezone="Asia/Kolkata", cameras=[CAMERA])],
        workspace_dir=workdir,
    )


def render_days(config, gallery, days, args) -> dict[date, pl.DataFrame]:
    from watershop_dagster.synthetic.footage import ground_truth_path, read_ground_truth, write_day

    truths = {}
    shop = config.shop(SHOP)
    for day in days:
        gt_path = ground_truth_path(config.footage_root, CAMERA, day)
        if args.reuse and gt_path.exists():
            truths[day] = read_ground_truth(gt_path)
            continue
        truths[day] = write_day(
            config.footage_root, shop, CAMERA, day, gallery, "plain",
            duration_s=args.minutes * 60.0, visits_per_hour=args.visits_per_hour, staff=args.staff,
            size=parse_size(args.size), fps=args.fps, workers=args.workers, seed=args.seed,
        )  # fmt: skip
    return truths


def run_vision(config, day: date, args) -> dict:
    from watershop_dagster.synthetic.footage import plain_path
    from watershop_dagster.vision.footage import FootageFile
    from watershop_dagster.vision.pipeline import process_video

    shop = config.shop(SHOP)
    keys = {"shop_id": SHOP, "date": day.isoformat(), "camera": CAMERA}
    done = lake.partition_file(config.lake_root, "face_embeddings", **keys)
    if args.reuse and done.exists():
        return {"reused": True}
    local_start = datetime.combine(day, shop.opening_time, tzinfo=shop.tz)
    path = plain_path(config.footage_root, CAMERA, local_start)
    footage = FootageFile(start_utc=local_start.astimezone(UTC), camera=CAMERA, path=path, layout="plain")
    started = time.perf_counter()
    result = process_video(footage, config.vision, workers=args.workers)
    wall = time.perf_counter() - started
    for dataset in ("frames", "face_detections", "face_tracks", "face_embeddings"):
        lake.write_partition(getattr(result, dataset), config.lake_root, dataset, **keys)
    return {"wall_s": round(wall, 1), "tracks": result.face_tracks.height, "embeddings": result.face_embeddings.height,
            "realtime_x": round(args.minutes * 60.0 / wall, 1)}


def write_transactions(config, day: date, truth: pl.DataFrame, seed: int) -> pl.DataFrame:
    """One transaction per true customer visit, at a random moment at the counter (whole seconds)."""
    from watershop_dagster.identity.ids import hid
    from watershop_dagster.pos.ingest import TRANSACTIONS_SCHEMA

    shop = config.shop(SHOP)
    rng = np.random.default_rng([seed, day.toordinal(), 77])
    rows = []
    for k, visit in enumerate(truth.filter(pl.col("role") == "customer").sort("entry_utc").iter_rows(named=True)):
        span = (visit["counter_end_utc"] - visit["counter_start_utc"]).total_seconds()
        moment = visit["counter_start_utc"] + timedelta(seconds=float(rng.uniform(0.15, 0.85)) * span)
        moment = moment.replace(microsecond=0)
        loyalty = int(hid("loyal", visit["person"], size=2), 16) % 2 == 0
        rows.append({
            "transaction_id": f"{day:%Y%m%d}-{k:04d}",
            "timestamp_local": moment.astimezone(shop.tz).replace(tzinfo=None),
            "timestamp_utc": moment,
            "customer_id": ("L-" + hid("pos", visit["person"], size=3)) if loyalty else None,
            "payment_mode": "Cash", "can_size": "20L", "number_of_cans": 1, "amount": 35.0,
            "payment_status": "Paid", "source_file": "bench", "source_line": k + 2,
            "_person": visit["person"], "_true_entry": visit["entry_utc"],
        })
    frame = pl.DataFrame(rows, schema={**TRANSACTIONS_SCHEMA, "_person": pl.Utf8, "_true_entry": pl.Datetime("us", "UTC")})
    lake.write_partition(frame.select(list(TRANSACTIONS_SCHEMA)), config.lake_root, "transactions",
                         shop_id=SHOP, date=day.isoformat())
    return frame


# --------------------------------------------------------------------------------------------
# evaluation


def match_visits(truth: pl.DataFrame, detected: pl.DataFrame, min_overlap: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one (true index, detected index) pairs, greedy by overlap / longer span."""
    t_start = [v.timestamp() for v in truth["entry_utc"]]
    t_end = [v.timestamp() for v in truth["counter_end_utc"]]
    d_start = [v.timestamp() for v in detected["entry_utc"]]
    d_end = [v.timestamp() for v in detected["exit_utc"]]
    cands = []
    for i in range(truth.height):
        for j in range(detected.height):
            inter = min(t_end[i], d_end[j]) - max(t_start[i], d_start[j])
            longer = max(t_end[i] - t_start[i], d_end[j] - d_start[j], 1e-6)
            if inter > 0 and inter / longer >= min_overlap:
                cands.append((inter / longer, i, j))
    cands.sort(reverse=True)
    used_t, used_d, pairs = set(), set(), []
    for _, i, j in cands:
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def evaluate(truth: pl.DataFrame, visits: pl.DataFrame, links: pl.DataFrame, pos: pl.DataFrame) -> dict:
    truth = truth.filter(pl.col("role") == "customer").sort("entry_utc")
    detected = visits.filter(pl.col("role") != "staff").sort("entry_utc")
    pairs = match_visits(truth, detected)
    recall = len(pairs) / truth.height if truth.height else 1.0
    precision = len(pairs) / detected.height if detected.height else 1.0
    people = [truth["person"][i] for i, _ in pairs]
    ids = [detected["customer_id"][j] for _, j in pairs]
    tp = fp = fn = 0
    for a in range(len(pairs)):
        for b in range(a + 1, len(pairs)):
            same_t, same_p = people[a] == people[b], ids[a] == ids[b]
            tp += same_t and same_p
            fp += same_p and not same_t
            fn += same_t and not same_p
    p_prec = tp / (tp + fp) if tp + fp else 1.0
    p_rec = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p_prec * p_rec / (p_prec + p_rec) if p_prec + p_rec else 0.0
    entry_err = [abs((detected["entry_utc"][j] - truth["entry_utc"][i]).total_seconds()) for i, j in pairs]
    exit_err = [abs((detected["exit_utc"][j] - truth["counter_end_utc"][i]).total_seconds()) for i, j in pairs]
    door_err = [abs((detected["exit_utc"][j] - truth["exit_utc"][i]).total_seconds()) for i, j in pairs]
    # transactions: linked to the detected visit matched to the payer's true visit?
    true_of_det = {detected["visit_id"][j]: i for i, j in pairs}
    true_key = {(truth["person"][i], truth["entry_utc"][i]): i for i in range(truth.height)}
    joined = pos.join(
        links.select("transaction_id", "visit_id", pl.col("customer_id").alias("linked_customer_id")),
        on="transaction_id", how="left",
    )
    right = right_person = 0
    id_votes: dict[str, dict[str, int]] = {}
    for cid, person in zip(ids, people):
        id_votes.setdefault(cid, {}).setdefault(person, 0)
        id_votes[cid][person] += 1
    person_of_id = {cid: max(v.items(), key=lambda kv: kv[1])[0] for cid, v in id_votes.items()}
    for row in joined.iter_rows(named=True):
        i = true_key.get((row["_person"], row["_true_entry"]))
        if row["visit_id"] is not None and true_of_det.get(row["visit_id"]) == i:
            right += 1
        if row["linked_customer_id"] is not None and person_of_id.get(row["linked_customer_id"]) == row["_person"]:
            right_person += 1
    n_tx = pos.height
    return {
        "true_visits": truth.height,
        "detected_visits": detected.height,
        "matched_visits": len(pairs),
        "visit_recall": round(recall, 4),
        "visit_precision": round(precision, 4),
        "pairwise_precision": round(p_prec, 4),
        "pairwise_recall": round(p_rec, 4),
        "pairwise_f1": round(f1, 4),
        "true_customers": truth["person"].n_unique(),
        "detected_customers": detected["customer_id"].drop_nulls().n_unique(),
        "unique_customer_error": detected["customer_id"].drop_nulls().n_unique() - truth["person"].n_unique(),
        "entry_mae_s": round(float(np.mean(entry_err)), 2) if entry_err else None,
        "exit_mae_s": round(float(np.mean(exit_err)), 2) if exit_err else None,
        "exit_p90_s": round(float(np.percentile(exit_err, 90)), 2) if exit_err else None,
        "exit_vs_door_mae_s": round(float(np.mean(door_err)), 2) if door_err else None,
        "transactions": n_tx,
        "linked_right_visit": round(right / n_tx, 4) if n_tx else None,
        "linked_right_person": round(right_person / n_tx, 4) if n_tx else None,
    }


def pos_map_accuracy(mapping: pl.DataFrame, pos: pl.DataFrame, links: pl.DataFrame, visits: pl.DataFrame,
                     truth: pl.DataFrame) -> float | None:
    """Share of POS loyalty ids mapped to a customer whose matched visits are mostly that person."""
    truth = truth.filter(pl.col("role") == "customer").sort("entry_utc")
    detected = visits.filter(pl.col("role") != "staff").sort("entry_utc")
    votes: dict[str, dict[str, int]] = {}
    for i, j in match_visits(truth, detected):
        votes.setdefault(detected["customer_id"][j], {}).setdefault(truth["person"][i], 0)
        votes[detected["customer_id"][j]][truth["person"][i]] += 1
    person_of_id = {cid: max(v.items(), key=lambda kv: kv[1])[0] for cid, v in votes.items()}
    loyal = pos.filter(pl.col("customer_id").is_not_null()).select("customer_id", "_person").unique()
    if loyal.is_empty():
        return None
    truth_of_pos = dict(loyal.iter_rows())
    ok = sum(1 for pid, cid in mapping.select("pos_customer_id", "customer_id").iter_rows()
             if person_of_id.get(cid) == truth_of_pos.get(pid))
    return round(ok / len(truth_of_pos), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=40.0, help="footage per day")
    parser.add_argument("--visits-per-hour", type=float, default=12.0)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--fps", type=float, default=12.0)
    parser.add_argument("--staff", default="John_Simm")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2025-03-03", help="first day")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "identity")
    parser.add_argument("--reuse", action="store_true", help="keep footage and vision outputs of an earlier run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args()

    from watershop_dagster.fixtures import fixtures_dir
    from watershop_dagster.identity import pipeline as ident
    from watershop_dagster.synthetic.gallery import load_gallery, save_gallery

    faces = fixtures_dir() / "faces"
    if not faces.is_dir():
        sys.exit(f"face fixtures not found at {faces}")
    workdir = args.workdir.resolve()
    config = make_config(workdir)
    if not args.reuse and workdir.exists():
        shutil.rmtree(workdir)
    else:
        identity_outputs = [d.name for d in catalog.DATASETS if d.personal and d.partition_keys == catalog.SHOP_DAY]
        for dataset in (*identity_outputs, "privacy_audit", "transactions"):
            shutil.rmtree(config.lake_root / dataset, ignore_errors=True)
        shutil.rmtree(config.warehouse_dir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    gallery = load_gallery(faces)
    shutil.rmtree(config.known_people_dir, ignore_errors=True)
    save_gallery(gallery, config.known_people_dir / "staff", [args.staff])
    days = [date.fromisoformat(args.start) + timedelta(days=k) for k in range(args.days)]
    truths = render_days(config, gallery, days, args)
    timings["render_s"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    vision = {day.isoformat(): run_vision(config, day, args) for day in days}
    timings["vision_s"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    per_day = {}
    all_pos, all_visits, all_links, all_truth = [], [], [], []
    mapping = None
    for day in days:
        pos = write_transactions(config, day, truths[day], args.seed)
        reg = ident.build_customer_registry(config, SHOP, day)
        vis = ident.build_visits(config, SHOP, day)
        lnk = ident.link_transactions(config, SHOP, day)
        per_day[day.isoformat()] = {"registry": reg.metadata(), "visits": vis.metadata(), "links": lnk.metadata()}
        all_pos.append(pos)
        all_visits.append(lake.read_dataset(config.lake_root, "visits", shop_id=SHOP, date=day))
        all_links.append(lake.read_dataset(config.lake_root, "transaction_visit_links", shop_id=SHOP, date=day))
        all_truth.append(truths[day])
        mapping = lake.read_dataset(config.lake_root, "pos_customer_map", shop_id=SHOP, date=day)
    timings["identity_s"] = round(time.perf_counter() - t0, 1)

    truth = pl.concat(all_truth)
    visits = pl.concat(all_visits)
    links = pl.concat(all_links)
    pos = pl.concat(all_pos)
    figures = evaluate(truth, visits, links, pos)
    figures["pos_map_accuracy"] = pos_map_accuracy(mapping, pos, links, visits, truth)
    figures["staff_visits_detected"] = visits.filter(pl.col("role") == "staff").height
    figures["ambiguous_people"] = sum(d["registry"]["ambiguous"] for d in per_day.values())

    # stability: re-run the first day after the others; no id may change
    before = lake.read_dataset(config.lake_root, "face_identities", shop_id=SHOP, date=days[0]).select("track_id", "customer_id")
    ident.build_customer_registry(config, SHOP, days[0])
    after = lake.read_dataset(config.lake_root, "face_identities", shop_id=SHOP, date=days[0]).select("track_id", "customer_id")
    changed = before.join(after, on="track_id").filter(
        pl.col("customer_id").ne_missing(pl.col("customer_id_right"))
    ).height
    figures["ids_changed_on_rerun_of_day1"] = changed
    figures["registry_stability_problems"] = sum(
        len(ident.registry_stability_problems(config, SHOP, day)) for day in days
    )
    targets = {
        "visit_recall": figures["visit_recall"] >= 0.98,
        "visit_precision": figures["visit_precision"] >= 0.98,
        "pairwise_f1": figures["pairwise_f1"] >= 0.97,
        "entry_mae_s": (figures["entry_mae_s"] or 0) <= 3.0,
        "exit_mae_s": (figures["exit_mae_s"] or 0) <= 3.0,
        "linked_right_visit": (figures["linked_right_visit"] or 0) >= 0.95,
    }
    out = {"params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "timings": timings, "vision": vision, "figures": figures, "targets_met": targets, "per_day": per_day}
    (workdir / "results.json").write_text(json.dumps(out, indent=2, default=str))
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return
    print(f"identity benchmark: {args.days} days x {args.minutes:g} min, {args.visits_per_hour:g} visits/h, "
          f"{args.size} @ {args.fps:g} fps, staff {args.staff}")
    print(f"timings: {timings}   vision: {vision}")
    for key, value in figures.items():
        print(f"  {key:32s} {value}")
    print("targets:", ", ".join(f"{k} {'OK' if v else 'MISSED'}" for k, v in targets.items()))
    print(f"details: {workdir / 'results.json'}")


if __name__ == "__main__":
    main()
