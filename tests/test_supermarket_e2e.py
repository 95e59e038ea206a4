"""A supermarket end to end, every way in real: receipt lines in a PostgreSQL POS table (timestamptz,
a few bad lines) pulled by `watershop receipts pull`; Frigate events of a day replayed through the
loopback Mosquitto into a running `watershop frigate listen`, a staff member among the shoppers
(Frigate's sub_label); `watershop run` over the whole range; then `watershop experiment analyse
--json` on a zone switchback whose +15 % lift the receipt generator injected from the experiment's own
schedule: the answer's interval covers the truth, its sign is right, and the experiment mart built by
the run agrees with it. The marts built along the way (sales per day, footfall, labour) are checked
against what went in."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from tests.frigate_helpers import ListenerProcess, needs_broker, publish_all, publisher
from tests.test_receipts_ingest import PG_DSN, _postgres
from watershop_dagster import catalog, lake
from watershop_dagster.cli import main
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.frigate.simulate import ScriptedPerson, person_messages, supermarket_replay
from watershop_dagster.receipts.generate import (
    DEFAULT_ZONE_OF_CATEGORY,
    ZONES,
    InjectedEffect,
    StoreProfile,
    generate_receipts,
)

pytestmark = [pytest.mark.slow, needs_broker, pytest.mark.timeout(1800)]  # 3 min of CPU; slower on a loaded box

SHOP, TZ = "market", ZoneInfo("Europe/Berlin")
PRE_START, START, END = date(2026, 3, 5), date(2026, 3, 9), date(2026, 3, 16)  # 8 zones x 8 days
LIFT = 0.15
FRIGATE_DAYS = (date(2026, 3, 14),)
CAMERAS = {"door": ["entrance", "Z1"], "aisle": ["Z2", "Z3"]}
# (receipt, local time, product, category, quantity, unit price, line total): lines the POS should not
# have, each quarantined with its reason while the rest of its day lands
BAD_LINES = [("BAD-1", datetime(2026, 3, 10, 12, 0), "P0001", "dairy", 1, -2.0, -2.0),
             ("BAD-2", datetime(2026, 3, 14, 12, 0), "P0001", "dairy", 2, 1.0, 5.0)]


def _config(root, table: str, prefix: str) -> str:
    zones_csv = "category,zone,valid_from,valid_to\n" + "".join(
        f"{category},{zone},,\n" for category, zone in DEFAULT_ZONE_OF_CATEGORY.items())
    (root / "category_zones.csv").write_text(zones_csv)
    return f"""\
partitions_start: "{PRE_START}"
shops:
  - id: {SHOP}
    timezone: Europe/Berlin
    cameras:
      door:
        detect: {{width: 1280, height: 720, fps: 5}}
        zones:
          entrance: {{coordinates: "0,0.6,0.3,0.6,0.3,1,0,1", kind: entrance}}
          Z1: {{coordinates: "0.5,0.2,1,0.2,1,1,0.5,1", kind: promo}}
      aisle:
        detect: {{width: 1280, height: 720, fps: 5}}
        zones:
          Z2: {{coordinates: "0,0,0.45,0,0.45,1,0,1", kind: shelf}}
          Z3: {{coordinates: "0.55,0,1,0,1,1,0.55,1", kind: shelf}}
    receipts:
      source: postgres
      dsn: "${{WATERSHOP_E2E_DSN}}"
      table: {table}
      cursor: line_id
      columns: {{timestamp: sold_at}}
      zone_map: category_zones.csv
frigate:
  shop: {SHOP}
  topic_prefix: {prefix}
  client_id: watershop-{prefix}
  fsync_seconds: 0.2
"""


def _pos_table(connection, table: str, lines: pl.DataFrame) -> int:
    """The POS's line table as a till database keeps it: UTC instants, one serial id per line."""
    cursor = connection.cursor()
    cursor.execute(f"create table {table} (line_id bigserial primary key, receipt_id text, sold_at timestamptz, "
                   "till text, customer_id text, payment_mode text, product_id text, product_name text, "
                   "category text, quantity numeric(10, 3), unit_price numeric(10, 2), discount numeric(10, 2), "
                   "line_total numeric(12, 2))")
    rows = [(r, t.replace(tzinfo=TZ), "T1", None, "Card", p, p, c, q, u, 0.0, n) for r, t, p, c, q, u, n in BAD_LINES]
    rows += [(row["receipt_id"], row["timestamp"].replace(tzinfo=TZ), row["till"], row["customer_id"],
              row["payment_mode"], row["product_id"], row["product_name"], row["category"], row["quantity"],
              row["unit_price"], row["discount"], row["line_total"]) for row in lines.iter_rows(named=True)]
    columns = ("receipt_id, sold_at, till, customer_id, payment_mode, product_id, product_name, category, "
               "quantity, unit_price, discount, line_total")
    with cursor.copy(f"copy {table} ({columns}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)


ENTRANTS = 5  # scripted shoppers per Frigate day who appear in the doorway and walk in


def _frigate_day(day: date, seed: int) -> tuple[list[str], float]:
    """A morning of random shoppers on both cameras, ENTRANTS walking in through the entrance, and Bob
    (staff) on the aisle camera for 40 min, 20 min out of view, then 30 min more: the payloads in
    frame-time order, and Bob's hours on shift (one shift: the gap is under staff_shift_gap_minutes)."""
    opening = datetime.combine(day, datetime.min.time()).replace(hour=10, tzinfo=TZ).timestamp()
    replay = supermarket_replay(CAMERAS, opening, people=40, seed=seed)
    rng = random.Random(seed)
    scripted = [ScriptedPerson("aisle", opening + 60, [(None, 5), ("Z2", 2395)], "bob", f"{opening}-bob1"),
                ScriptedPerson("aisle", opening + 3660, [(None, 5), ("Z3", 1795)], "bob", f"{opening}-bob2")]
    scripted += [ScriptedPerson("door", opening + 300 * n, [("entrance", 2), ("Z1", 30)], None, f"{opening}-in{n}")
                 for n in range(ENTRANTS)]
    timed = [(json.loads(m)["after"]["frame_time"], m) for m in replay.messages]
    for person in scripted:
        timed += [(json.loads(m)["after"]["frame_time"], m) for m in person_messages(person, rng)[0]]
    return [m for _, m in sorted(timed, key=lambda pair: pair[0])], (2400 + 1200 + 1800) / 3600


def _landed(config) -> int:
    return sum(len(path.read_text().splitlines()) for path in config.frigate_landing.glob(f"{SHOP}/*/*.ndjson"))


def test_a_supermarket_from_pos_database_and_frigate_to_an_experiments_answer(tmp_path):
    connection = _postgres()
    table = f"pos_lines_{uuid.uuid4().hex[:8]}"
    prefix = f"frigate-e2e-{uuid.uuid4().hex[:8]}"
    (tmp_path / CONFIG_FILENAME).write_text(_config(tmp_path, table, prefix))
    config_file = str(tmp_path / CONFIG_FILENAME)
    config = load_config(config_file)
    (config.known_people_dir / "staff" / "bob").mkdir(parents=True)
    runner = CliRunner()

    def watershop(*args: str) -> str:
        outcome = runner.invoke(main, [*args, "--config", config_file], catch_exceptions=False)
        assert outcome.exit_code == 0, outcome.output
        return outcome.output

    # the owner declares the experiment and draws its schedule
    watershop("experiment", "create", "endcaps", "--zones", ",".join(ZONES), "--pre-start", PRE_START.isoformat(),
              "--start", START.isoformat(), "--end", END.isoformat(), "--seed", "11")
    watershop("experiment", "assign", "endcaps", "--out", str(tmp_path / "schedule.csv"))
    assignment = pl.read_csv(tmp_path / "schedule.csv", try_parse_dates=True)

    # the tills ring up the period, treated zone-days selling LIFT more, into the POS database
    lines = generate_receipts(PRE_START, END, seed=104, profile=StoreProfile(receipts_per_day=300),
                              effect=InjectedEffect.from_assignment(assignment, lift=LIFT))
    frame = lines.frame()
    os.environ["WATERSHOP_E2E_DSN"] = PG_DSN
    listener = None
    try:
        assert _pos_table(connection, table, frame) == frame.height + len(BAD_LINES)
        pulled = watershop("receipts", "pull", "--shop", SHOP)
        days = (END - PRE_START).days + 1
        assert f"landed {days} day(s) {PRE_START} .. {END}: {frame.height} lines, {len(BAD_LINES)} quarantined" \
            in pulled, pulled

        # Frigate publishes a day of events; the running listener lands every message
        listener = ListenerProcess(tmp_path / CONFIG_FILENAME)
        days_messages = {day: _frigate_day(day, seed) for seed, day in enumerate(FRIGATE_DAYS)}
        client = publisher()
        for messages, _ in days_messages.values():
            publish_all(client, f"{prefix}/events", messages)
        client.loop_stop()
        client.disconnect()
        total = sum(len(messages) for messages, _ in days_messages.values())
        deadline = time.monotonic() + 30
        while _landed(config) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.terminate() == 0
        assert _landed(config) == total

        watershop("run", "--from", PRE_START.isoformat(), "--to", END.isoformat())
        result = json.loads(watershop("experiment", "analyse", "endcaps", "--json", "--permutations", "500",
                                      "--no-report"))
    finally:
        if listener is not None and listener.proc.poll() is None:
            listener.kill()
        connection.cursor().execute(f"drop table if exists {table}")
        connection.close()
        os.environ.pop("WATERSHOP_E2E_DSN", None)

    assert {"effect", "ci_low", "ci_high", "p_value", "mde", "n_cells"} <= set(result)
    assert result["n_cells"] == len(ZONES) * ((END - START).days + 1)
    assert result["ci_low"] < LIFT < result["ci_high"] and result["effect"] > 0 and result["ci_low"] > 0
    assert result["p_value"] < 0.05 and result["mde"] > 0

    quarantine = lake.read_dataset(config.lake_root, catalog.RECEIPTS_QUARANTINE, shop_id=SHOP)
    assert quarantine.sort("source_file").select("source_file", "reason").rows() == [
        (f"{SHOP}/pulled/2026-03-10.csv", "unit_price '-2.00' is negative"),
        (f"{SHOP}/pulled/2026-03-14.csv", "line_total 5.0 != quantity x unit_price - discount = 2.0")]
    expected_days = frame.group_by(pl.col("timestamp").dt.date().alias("date")).agg(
        pl.col("receipt_id").n_unique().alias("receipts"), pl.col("line_total").sum().round(2).alias("sales")
    ).sort("date").rows()
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        store_days = db.execute("select date, receipts, sales::double from fct_store_day where shop_id = ? "
                                "order by date", [SHOP]).fetchall()
        mart = db.execute("select effect, ci_low, ci_high, n_cells, status from experiment_results "
                          "where experiment = 'endcaps' and shop_id = ?", [SHOP]).fetchone()
        labour = db.execute("select date, sum(labour_hours), sum(store_visitors), sum(receipts), max(staff_on_floor) "
                            "from sales_per_labour_hour where shop_id = ? and labour_hours > 0 group by date "
                            "order by date", [SHOP]).fetchall()
        entries = dict(db.execute("select date, sum(entries) from footfall_hourly where shop_id = ? group by date",
                                  [SHOP]).fetchall())
    assert [(d, r, round(s, 2)) for d, r, s in store_days] == [(d, r, round(s, 2)) for d, r, s in expected_days]
    assert mart[3] == result["n_cells"] and mart[4] == "analysed" and mart[1] < LIFT < mart[2]
    assert mart[0] == pytest.approx(result["effect"], abs=1e-9)
    assert [day for day, *_ in labour] == list(FRIGATE_DAYS)
    for day, hours, visitors, receipts, staff in labour:
        assert hours == pytest.approx(days_messages[day][1], abs=1e-3) and staff == 1
        assert receipts > 0 and visitors <= entries[day]
    assert set(entries) == set(FRIGATE_DAYS) and all(n >= ENTRANTS for n in entries.values())
