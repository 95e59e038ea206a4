"""The footfall check: entries at the entrance count at least the identified people who came in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from watershop_dagster.zones.checks import footfall_below_identified_entrants
from watershop_dagster.zones.schemas import FOOTFALL, ZONE_VISITS

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def _visits(rows: list[tuple[str, str, str | None, int]]) -> pl.DataFrame:
    """(track, kind, identity, enter second) -> ZONE_VISITS rows on camera `door`."""
    return pl.DataFrame([{"camera": "door", "zone": kind, "kind": kind, "track_id": track, "identity": identity,
                          "enter_ts": T0 + timedelta(seconds=s), "exit_ts": T0 + timedelta(seconds=s + 2)}
                         for track, kind, identity, s in rows]).select(
        [pl.col(c).cast(t) if c in ("camera", "zone", "kind", "track_id", "identity", "enter_ts", "exit_ts")
         else pl.lit(None, t).alias(c) for c, t in ZONE_VISITS.items()])


def _footfall(directions: list[str]) -> pl.DataFrame:
    return pl.DataFrame([{"camera": "door", "zone": "entrance", "track_id": f"t{i}", "identity": None,
                          "ts": T0, "direction": d} for i, d in enumerate(directions)], schema=FOOTFALL)


def test_identified_people_who_came_in_need_as_many_entries():
    visits = _visits([("t1", "entrance", "C-1", 0), ("t1", "shelf", "C-1", 5),
                      ("t2", "entrance", "C-2", 1), ("t2", "aisle", "C-2", 6),
                      ("t3", "shelf", "C-3", 0), ("t3", "entrance", "C-3", 9),  # leaving, not entering
                      ("t4", "entrance", None, 2), ("t4", "shelf", None, 7)])  # came in, but nobody known
    assert footfall_below_identified_entrants(_footfall(["in", "in", "out"]), visits).is_empty()
    short = footfall_below_identified_entrants(_footfall(["in", "out"]), visits)
    assert short.rows() == [("door", 1, 2)]
    assert footfall_below_identified_entrants(_footfall([]), visits).rows() == [("door", 0, 2)]
