"""Customer merges: two ids later shown to be one person are merged (older survives), and every
reader — the registry, the next day's matching, the stability check, erasure, the marts — sees one
person. Faces are synthetic 128-d vectors with controlled distances, so each rule is tested at its
edge."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from watershop_dagster import catalog, lake
from watershop_dagster.config import Thresholds
from watershop_dagster.identity.merges import (
    apply_survivors,
    find_merges,
    ledger_as_survivors,
    linkage,
    marts_rebuild_from,
    merge_group,
    survivor_map,
)
from watershop_dagster.identity.registry import LEDGER_SCHEMA, registry_snapshot
from watershop_dagster.vision.faces import EMBEDDING_DIM
from watershop_dagster.vocabulary import Role

THRESHOLDS = Thresholds()  # 0.5 match, 0.05 margin, 0.1 separation
DAYS = [date(2025, 3, 3) + timedelta(days=k) for k in range(4)]
#: per-dimension noise: two faces of one look are ~0.3 apart (sqrt(2 * 128) * sigma)
SIGMA = 0.3 / np.sqrt(2 * EMBEDDING_DIM)


def look(rng: np.random.Generator, centre: np.ndarray, n: int = 3) -> np.ndarray:
    return (centre + rng.normal(0, SIGMA, (n, EMBEDDING_DIM))).astype(np.float32)


def away(rng: np.random.Generator, centre: np.ndarray, distance: float) -> np.ndarray:
    """A point `distance` from `centre` in a random direction."""
    direction = rng.normal(size=EMBEDDING_DIM)
    return centre + distance * direction / np.linalg.norm(direction)


def ledger_rows(customer_id: str, day: date, vectors: np.ndarray, *, created_day: date | None = None,
                ambiguous_with: str | None = None, hour: int = 10) -> pl.DataFrame:
    ts = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)
    n = len(vectors)
    return pl.DataFrame({
        "customer_id": [customer_id] * n, "role": [Role.CUSTOMER] * n, "person_key": [None] * n,
        "created": [created_day == day] * n, "created_day": [created_day] * n,
        "created_from_track": [f"{customer_id}-t0"] * n, "ambiguous_with": [ambiguous_with] * n,
        "track_id": [f"{customer_id}-{day}-t{hour}"] * n,
        "embedding_id": [f"{customer_id}-{day}-{hour}-e{i}" for i in range(n)], "camera": ["counter"] * n,
        "ts_utc": [ts + timedelta(seconds=i) for i in range(n)], "quality": [0.8] * n,
        "embedding": list(vectors),
    }, schema=LEDGER_SCHEMA).with_columns(pl.lit(day).alias("date"))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def returning_customer(rng, shift: float = 0.3):
    """Customer a (days 1-2) and, after a change of look `shift` away, customer b (days 3-4,
    created as ambiguous with a); a stranger c, far from both, seen on days 1-2."""
    centre = rng.normal(size=EMBEDDING_DIM)
    centre *= 3.0 / np.linalg.norm(centre)
    later = away(rng, centre, shift)
    stranger = away(rng, centre, 1.0)
    parts = [
        ledger_rows("a", DAYS[0], look(rng, centre), created_day=DAYS[0]),
        ledger_rows("a", DAYS[1], look(rng, centre), created_day=DAYS[0]),
        ledger_rows("b", DAYS[2], look(rng, later), created_day=DAYS[2], ambiguous_with="a"),
        ledger_rows("b", DAYS[3], look(rng, later), created_day=DAYS[2], ambiguous_with="a"),
        *(ledger_rows("c", day, look(rng, stranger), created_day=DAYS[0], hour=15) for day in DAYS[:2]),
    ]
    return pl.concat(parts), centre, later


def test_survivors_follow_chains_and_groups_hold_every_id():
    merges = pl.DataFrame({"customer_id": ["b", "c"], "surviving_id": ["a", "b"]})
    assert survivor_map(merges) == {"b": "a", "c": "a"}
    assert merge_group(merges, "a") == merge_group(merges, "c") == {"a", "b", "c"}
    assert merge_group(merges, "z") == {"z"}
    frame = pl.DataFrame({"customer_id": ["c", "z", None]})
    assert apply_survivors(frame, survivor_map(merges))["customer_id"].to_list() == ["a", "z", None]


def test_linkage_needs_both_sets_near_not_one_lucky_pair(rng):
    centre = rng.normal(size=EMBEDDING_DIM)
    same = look(rng, centre, 4)
    one_lucky = np.vstack([look(rng, centre, 1), look(rng, away(rng, centre, 1.0), 3)])
    assert linkage(same, look(rng, centre, 4)) < 0.4
    assert linkage(same, one_lucky) > 0.8  # its nearest pair is close, most of its faces are not


def test_a_returning_customer_split_by_a_new_look_is_merged_into_the_older_id(rng):
    ledger, _, _ = returning_customer(rng)
    merges = find_merges(ledger, DAYS[3], THRESHOLDS)
    assert merges.select("customer_id", "surviving_id", "first_seen").rows() == [("b", "a", DAYS[2])]
    row = merges.row(0, named=True)
    assert row["linkage"] < THRESHOLDS.face_match_distance + THRESHOLDS.face_ambiguous_margin
    assert row["runner_up"] - row["linkage"] >= THRESHOLDS.face_separation
    # only pairs with a customer seen on the day are reconsidered: day 2's build saw only a and c
    assert find_merges(ledger.filter(pl.col("date") <= DAYS[1]), DAYS[1], THRESHOLDS).is_empty()


def test_a_different_person_is_not_merged(rng):
    ledger, _, _ = returning_customer(rng, shift=0.9)
    assert find_merges(ledger, DAYS[3], THRESHOLDS).is_empty()


def test_a_close_rival_keeps_the_two_ids_apart(rng):
    """A third customer about as near as the candidate: the link is not one-sided, nothing merges."""
    ledger, centre, later = returning_customer(rng)
    rival = away(rng, (centre + later) / 2, 0.25)
    ledger = pl.concat([ledger, ledger_rows("d", DAYS[1], look(rng, rival), created_day=DAYS[1], hour=12)])
    assert find_merges(ledger, DAYS[3], THRESHOLDS).is_empty()


def test_two_ids_seen_on_one_day_are_two_people(rng):
    """The day's clustering kept them apart (twins at the counter together): however alike, never merged."""
    ledger, centre, later = returning_customer(rng)
    together = ledger_rows("a", DAYS[3], look(rng, centre), created_day=DAYS[0], hour=11)
    assert find_merges(pl.concat([ledger, together]), DAYS[3], THRESHOLDS).is_empty()


def test_the_registry_reads_a_merged_id_as_its_survivor(rng):
    ledger, _, _ = returning_customer(rng)
    merges = find_merges(ledger, DAYS[3], THRESHOLDS)
    snapshot = registry_snapshot(ledger_as_survivors(ledger, survivor_map(merges)), DAYS[3])
    rows = {r["customer_id"]: r for r in snapshot.iter_rows(named=True)}
    assert set(rows) == {"a", "c"}
    assert rows["a"]["first_seen"] == DAYS[0] and rows["a"]["n_days_seen"] == 4
    assert rows["a"]["ambiguous_with"] is None  # not ambiguous with itself
    assert set(rows["a"]["exemplar_days"]) >= {DAYS[0], DAYS[3]}
    assert rows["c"]["n_days_seen"] == 2


def test_marts_are_rebuilt_from_the_merged_ids_first_day(rng, tmp_path):
    ledger, _, _ = returning_customer(rng)
    merges = find_merges(ledger, DAYS[3], THRESHOLDS)
    lake.write_dataset(merges, tmp_path, catalog.CUSTOMER_MERGES, shop_id="s1", date=DAYS[3])
    lake.write_dataset(merges.clear(), tmp_path, catalog.CUSTOMER_MERGES, shop_id="s1", date=DAYS[2])
    assert marts_rebuild_from(tmp_path, "s1", DAYS[3], DAYS[3]) == DAYS[2]
    assert marts_rebuild_from(tmp_path, None, DAYS[3], DAYS[3]) == DAYS[2]
    assert marts_rebuild_from(tmp_path, "s1", DAYS[2], DAYS[2]) is None  # that day merged nobody
    assert marts_rebuild_from(tmp_path, "s2", DAYS[0], DAYS[3]) is None


def test_the_pipeline_merges_then_matches_the_person_as_the_older_id(tmp_path):
    """Day 1 the person is enrolled (a); day 2 a new look lands in the ambiguous band and, with
    every band case kept ambiguous, becomes b; day 3 (default rules) the new look is seen again and
    the build merges b into a; day 4 the same look is matched to a directly. The stability check
    accepts b leaving the registry, and the merge is in the lake for the marts."""
    from tests.test_identity_registry import SHOP, ids_by_track, make_config, no_known, visit, write_vision_day
    from watershop_dagster.identity import pipeline as ident

    rng = np.random.default_rng(3)
    centre = rng.normal(size=EMBEDDING_DIM)
    centre *= 3.0 / np.linalg.norm(centre)
    faces = {"P": np.vstack([(centre + rng.normal(0, 0.1 / 16, (3, EMBEDDING_DIM))),
                             (away(rng, centre, 0.47) + rng.normal(0, 0.1 / 16, (3, EMBEDDING_DIM)))]).astype(np.float32),
             "Q": look(rng, away(rng, centre, 1.2), 3)}
    days = [date(2024, 5, 1) + timedelta(days=k) for k in range(4)]
    strict = make_config(tmp_path, face_separation=1.0)  # day 2: a band match stays ambiguous
    config = make_config(tmp_path)
    plans = [[visit("P", [0, 1], 0), visit("Q", [0, 1], 300)], [visit("P", [3, 4], 0)],
             [visit("P", [4, 5], 0)], [visit("P", [3, 5], 0)]]
    for day, plan, cfg in zip(days, plans, [config, strict, config, config]):
        write_vision_day(cfg, day, plan, faces)
        ident.build_customer_registry(cfg, SHOP, day, known=no_known())
    a, b = ids_by_track(config, days[0])["t0501-000"], ids_by_track(config, days[1])["t0502-000"]
    assert a != b
    merges = lake.read_days(config.lake_root, catalog.CUSTOMER_MERGES, SHOP)
    assert merges.select("date", "customer_id", "surviving_id", "first_seen").rows() == [(days[2], b, a, days[1])]
    assert set(ids_by_track(config, days[3]).values()) == {a}
    for day in days[2:]:
        snapshot = lake.read_dataset(config.lake_root, catalog.CUSTOMER_REGISTRY, shop_id=SHOP, date=day)
        assert b not in snapshot["customer_id"].to_list() and a in snapshot["customer_id"].to_list()
        assert ident.registry_stability_problems(config, SHOP, day) == []
    # a re-run of the deciding day decides the same merge (idempotent)
    ident.build_customer_registry(config, SHOP, days[2], known=no_known())
    assert lake.read_days(config.lake_root, catalog.CUSTOMER_MERGES, SHOP).equals(merges)


def test_a_run_whose_builds_merged_someone_rebuilds_the_marts_from_the_merged_ids_first_day(rng, tmp_path):
    from assets.marts import merges_scope

    ledger, _, _ = returning_customer(rng)
    lake.write_dataset(find_merges(ledger, DAYS[3], THRESHOLDS), tmp_path, catalog.CUSTOMER_MERGES,
                       shop_id="s1", date=DAYS[3])
    scope = {"shop_id": "s1", "date": DAYS[3].isoformat(), "date_to": DAYS[3].isoformat()}
    assert merges_scope(tmp_path, scope) == {**scope, "date": DAYS[2].isoformat()}
    other_shop = {**scope, "shop_id": "s2"}
    assert merges_scope(tmp_path, other_shop) == other_shop
    earlier = {"date": DAYS[0].isoformat(), "date_to": DAYS[3].isoformat()}  # already covers the merged days
    assert merges_scope(tmp_path, earlier) == earlier


def test_the_batched_linkage_rows_equal_the_pairwise_definition(rng):
    from watershop_dagster.identity.matching import CandidateIndex
    from watershop_dagster.identity.merges import _Linkages

    ledger, _, _ = returning_customer(rng)
    ledger = pl.concat([ledger, ledger_rows("d", DAYS[1], look(rng, rng.normal(size=EMBEDDING_DIM), 5), hour=12)])
    index = CandidateIndex.from_ledger(ledger.drop("date"))
    days = [set(ledger.filter(pl.col("customer_id") == key)["date"]) for key in index.keys]
    rows = _Linkages(index, days)
    block = [index.vectors[index.offsets[i]:index.offsets[i + 1]] for i in range(len(index.keys))]
    for i in range(len(index.keys)):
        expected = [np.inf if days[i] & days[j] else linkage(block[i], block[j]) for j in range(len(index.keys))]
        assert np.allclose(rows.row(i), expected)


def test_pos_customer_map_counts_a_merged_ids_links_for_its_survivor(tmp_path):
    """A loyalty card linked twice to c_b and once to c_a maps to c_b; once c_b is merged into c_a,
    the day's POS map gives the card to c_a with all three links."""
    from tests.test_identity_registry import SHOP, make_config
    from watershop_dagster.identity import pipeline as ident

    config = make_config(tmp_path)
    days = [date(2024, 5, 1) + timedelta(days=k) for k in range(4)]  # bills on days 0-1, none after
    schema = catalog.TRANSACTION_VISIT_LINKS.schema

    def links(day: date, customers: list[str]) -> pl.DataFrame:
        return pl.DataFrame([{"transaction_id": f"{day}-{k}", "visit_id": f"v{day}-{k}", "customer_id": customer,
                              "pos_customer_id": "L1", "link_confidence": 0.9}
                             for k, customer in enumerate(customers)]).with_columns(
            **{name: pl.lit(None, dtype) for name, dtype in schema.items() if name not in
               {"transaction_id", "visit_id", "customer_id", "pos_customer_id", "link_confidence"}}
        ).select(list(schema)).cast(dict(schema))

    lake.write_dataset(links(days[0], ["c_b", "c_b"]), config.lake_root, catalog.TRANSACTION_VISIT_LINKS,
                       shop_id=SHOP, date=days[0])
    lake.write_dataset(links(days[1], ["c_a"]), config.lake_root, catalog.TRANSACTION_VISIT_LINKS,
                       shop_id=SHOP, date=days[1])

    def card_owner(day: date) -> tuple:
        ident.link_transactions(config, SHOP, day)
        mapping = lake.read_dataset(config.lake_root, catalog.POS_CUSTOMER_MAP, shop_id=SHOP, date=day)
        return mapping.filter(pl.col("pos_customer_id") == "L1").select("customer_id", "n_links").row(0)

    assert card_owner(days[2]) == ("c_b", 2)
    merge = pl.DataFrame([{"customer_id": "c_b", "surviving_id": "c_a", "first_seen": days[0], "linkage": 0.4,
                           "runner_up": 0.9, "n_exemplars": 3, "n_exemplars_surviving": 3}])
    lake.write_dataset(merge.cast(dict(catalog.CUSTOMER_MERGES.schema)), config.lake_root, catalog.CUSTOMER_MERGES, shop_id=SHOP, date=days[3])
    assert card_owner(days[3]) == ("c_a", 3)
