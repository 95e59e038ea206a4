"""Every way receipts come in lands the same lake data: CSV exports, a PostgreSQL or MariaDB pull and a
paged JSON API, each validated with bad lines quarantined, incremental past a high-water mark and
idempotent when pulled again. The databases are the real loopback servers; the API is a real HTTP
server started here."""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from watershop_dagster import catalog, lake
from watershop_dagster.config import init_workspace, load_config
from watershop_dagster.receipts.ingest import ingest_receipt_days, write_zone_map
from watershop_dagster.receipts.pull import PullError, pull_receipts, read_mark, state_path
from watershop_dagster.receipts.schema import read_receipts

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_DSN = "mysql://root@127.0.0.1:3306/test"

# (line id, receipt, timestamp, product, category, quantity, unit price, line total); the last is bad
LINES = [
    (1, "R1", datetime(2026, 3, 2, 9, 15), "P1", "dairy", 2, 1.50, 3.00),
    (2, "R1", datetime(2026, 3, 2, 9, 15), "P2", "bakery", 1, 2.25, 2.25),
    (3, "R2", datetime(2026, 3, 2, 18, 40), "P3", "produce", -1, 0.80, -0.80),  # a refund
    (4, "R3", datetime(2026, 3, 3, 10, 5), "P1", "dairy", 3, 1.50, 4.50),
]
BAD = (5, "R4", datetime(2026, 3, 3, 11, 0), "P4", "snacks", 1, -2.00, -2.00)  # negative unit price
LATER = [(6, "R5", datetime(2026, 3, 3, 19, 30), "P2", "bakery", 2, 2.25, 4.50)]
# the POS's own column names, mapped in the config
POS_COLUMNS = {"receipt_id": "bill_no", "timestamp": "sold_at", "product_id": "sku", "category": "dept",
               "quantity": "qty", "unit_price": "price", "line_total": "net"}


def _workspace(tmp_path: Path, receipts: dict) -> object:
    config = init_workspace(tmp_path, shop_id="super", timezone="Europe/Berlin", partitions_start=date(2026, 1, 1))
    path = config.workspace_dir / "watershop.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["shops"][0]["receipts"] = receipts
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def _land(config, days=(DAY1, DAY2)) -> dict:
    return ingest_receipt_days(config, "super", days)


def _lake_state(config) -> tuple[list[tuple], list[str]]:
    lines = read_receipts(config.lake_root, "super").sort("timestamp", "product_id")
    quarantine = lake.read_dataset(config.lake_root, catalog.RECEIPTS_QUARANTINE, shop_id="super")
    return (lines.select("date", "receipt_id", "product_id", "quantity", "line_total").rows(),
            sorted(quarantine["reason"]))


EXPECTED_LINES = [
    (DAY1, "R1", "P1", 2.0, 3.0), (DAY1, "R1", "P2", 1.0, 2.25), (DAY1, "R2", "P3", -1.0, -0.8),
    (DAY2, "R3", "P1", 3.0, 4.5),
]


def _assert_first_pull(config, pulled) -> None:
    assert pulled.lines == 5 and pulled.days == {DAY1, DAY2}
    _land(config)
    lines, reasons = _lake_state(config)
    assert lines == EXPECTED_LINES
    assert len(reasons) == 1 and reasons[0].startswith("unit_price '-2") and reasons[0].endswith("is negative")
    files = set(read_receipts(config.lake_root, "super")["source_file"])
    assert files == {"super/pulled/2026-03-02.csv", "super/pulled/2026-03-03.csv"}


def _assert_incremental_and_idempotent(config, add_later) -> None:
    mark = read_mark(config, "super")
    assert mark is not None and mark.cursor == 5
    assert pull_receipts(config, "super").lines == 0  # nothing new past the mark
    add_later()
    again = pull_receipts(config, "super")
    assert again.lines == 1 and again.days == {DAY2} and read_mark(config, "super").cursor == 6
    _land(config)
    after = _lake_state(config)
    assert after[0] == [*EXPECTED_LINES, (DAY2, "R5", "P2", 2.0, 4.5)]
    # a full re-pull of both days (and a lost mark) changes nothing: lines are keyed, not appended
    assert pull_receipts(config, "super", DAY1, DAY2).lines == 6
    state_path(config, "super").unlink()
    assert pull_receipts(config, "super").lines == 6
    _land(config)
    assert _lake_state(config) == after


# --- CSV exports ---------------------------------------------------------------------------------


def test_csv_exports_land_through_the_column_mapping_with_bad_lines_quarantined(tmp_path):
    config = _workspace(tmp_path, {"source": "csv", "columns": POS_COLUMNS})
    folder = config.receipts_landing / "super"
    folder.mkdir(parents=True)
    header = "bill_no,sold_at,sku,dept,qty,price,net,till\n"
    body = "".join(f"{r},{t:%Y-%m-%d %H:%M:%S},{p},{c},{q},{u},{n},T1\n" for _, r, t, p, c, q, u, n in LINES[:3])
    (folder / "export_2026-03-02.csv").write_text(header + body + "R9,2026-03-03 08:00:00,P1,dairy,1,1.5,1.5,T1\n")
    undated = "".join(f"{r},{t:%Y-%m-%dT%H:%M},{p},{c},{q},{u},{n},T2\n" for _, r, t, p, c, q, u, n in (LINES[3], BAD))
    (folder / "export.csv").write_text(header + undated)
    first = _land(config)
    lines, reasons = _lake_state(config)
    assert lines == EXPECTED_LINES
    assert reasons == ["timestamp '2026-03-03 08:00:00' is on 2026-03-03 but the file is dated 2026-03-02",
                       "unit_price '-2.0' is negative"]
    assert first[DAY1].files == ["super/export_2026-03-02.csv"] and first[DAY2].files == ["super/export.csv"]
    # idempotent: the same files give the same partitions; a removed file's lines disappear
    assert _land(config)[DAY2].valid.equals(first[DAY2].valid)
    (folder / "export.csv").unlink()
    _land(config)
    assert _lake_state(config) == (EXPECTED_LINES[:3], [reasons[0]])


def test_the_zone_map_is_published_per_shop_with_its_validity(tmp_path):
    zones_csv = tmp_path / "category_zones.csv"
    zones_csv.write_text("category,zone,valid_from,valid_to\ndairy,Z1,,2026-03-03\ndairy,Z2,2026-03-03,\n"
                         "bakery,Z2,,\n")
    config = _workspace(tmp_path, {"zone_map": "category_zones.csv"})
    zone_map, path = write_zone_map(config, "super")
    assert zone_map.zone_on("dairy", DAY1) == "Z1" and zone_map.zone_on("dairy", DAY2) == "Z2"
    stored = lake.read_dataset(config.lake_root, catalog.CATEGORY_ZONES, shop_id="super")
    assert stored.sort("category", "valid_from").rows() == [
        ("bakery", "Z2", date(1900, 1, 1), None), ("dairy", "Z1", date(1900, 1, 1), DAY2), ("dairy", "Z2", DAY2, None)]
    assert path == lake.partition_file(config.lake_root, "category_zones", shop_id="super")


# --- SQL databases -------------------------------------------------------------------------------


def _sql_rows(lines):
    return [(i, r, t, p, c, q, u, n) for i, r, t, p, c, q, u, n in lines]


def _postgres():
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")


def _mariadb():
    pymysql = pytest.importorskip("pymysql")
    try:
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=True,
                               connect_timeout=3)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB on 127.0.0.1:3306 is not reachable: {exc}")


CREATE = ("create table {t} (line_id integer primary key, bill_no varchar(20), sold_at timestamp, sku varchar(20), "
          "dept varchar(40), qty numeric(10, 3), price numeric(10, 2), net numeric(12, 2))")
INSERT = "insert into {t} values (%s, %s, %s, %s, %s, %s, %s, %s)"


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_a_database_pull_is_incremental_idempotent_and_quarantines_bad_lines(tmp_path, kind):
    connection = _postgres() if kind == "postgres" else _mariadb()
    table = f"receipt_lines_{uuid.uuid4().hex[:8]}"
    cursor = connection.cursor()
    cursor.execute(CREATE.format(t=table))
    try:
        cursor.executemany(INSERT.format(t=table), _sql_rows([*LINES, BAD]))
        os.environ["WATERSHOP_TEST_DSN"] = PG_DSN if kind == "postgres" else MARIADB_DSN
        config = _workspace(tmp_path, {"source": kind, "dsn": "${WATERSHOP_TEST_DSN}", "table": table,
                                       "cursor": "line_id", "columns": POS_COLUMNS, "batch_size": 2})
        _assert_first_pull(config, pull_receipts(config, "super"))
        _assert_incremental_and_idempotent(
            config, lambda: cursor.executemany(INSERT.format(t=table), _sql_rows(LATER)))
    finally:
        cursor.execute(f"drop table {table}")
        connection.close()
        os.environ.pop("WATERSHOP_TEST_DSN", None)


def test_an_unset_secret_or_unreachable_database_fails_without_moving_the_mark(tmp_path):
    config = _workspace(tmp_path, {"source": "postgres", "dsn": "${WATERSHOP_UNSET_SECRET}", "table": "t",
                                   "cursor": "id"})
    with pytest.raises(PullError, match="WATERSHOP_UNSET_SECRET"):
        pull_receipts(config, "super")
    config = _workspace(tmp_path / "b", {"source": "mariadb", "dsn": "mysql://root@127.0.0.1:1/test", "table": "t",
                                   "cursor": "id", "timeout_seconds": 2})
    with pytest.raises(PullError, match="cannot connect"):
        pull_receipts(config, "super")
    assert read_mark(config, "super") is None


# --- a paged JSON API ----------------------------------------------------------------------------


class _Api:
    """A POS API: GET /lines?since=<line_id>&page=<n>, 2 lines a page, a `next` link until the last."""

    def __init__(self):
        self.records = [self.record(line) for line in (*LINES, BAD)]
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                api.requests.append(self.path)
                if self.headers.get("Authorization") != "Bearer s3cret":
                    self.send_response(401)
                    self.end_headers()
                    return
                query = parse_qs(urlparse(self.path).query)
                since, page = int(query.get("since", ["0"])[0]), int(query.get("page", ["0"])[0])
                lines = [r for r in api.records if r["line_id"] > since]
                body = {"items": lines[page * 2:page * 2 + 2],
                        "next": f"/lines?since={since}&page={page + 1}" if len(lines) > page * 2 + 2 else None}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/lines"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def record(line) -> dict:
        i, r, t, p, c, q, u, n = line
        return {"line_id": i, "bill_no": r, "sold_at": t.isoformat(), "sku": p, "dept": c, "qty": q, "price": u,
                "net": n}


def test_an_api_pull_follows_pages_and_is_incremental_and_idempotent(tmp_path, monkeypatch):
    api = _Api()
    try:
        monkeypatch.setenv("WATERSHOP_TEST_TOKEN", "s3cret")
        config = _workspace(tmp_path, {"source": "http", "url": api.url, "cursor": "line_id", "columns": POS_COLUMNS,
                                       "headers": {"Authorization": "Bearer ${WATERSHOP_TEST_TOKEN}"}})
        _assert_first_pull(config, pull_receipts(config, "super"))
        assert len(api.requests) == 3  # 5 lines, 2 a page
        _assert_incremental_and_idempotent(config, lambda: api.records.append(api.record(LATER[0])))
        assert any("since=5" in request for request in api.requests)
    finally:
        api.server.shutdown()
        api.server.server_close()
