"""Receipt pulls: lines per second from PostgreSQL, MariaDB (loopback servers) and a local JSON API into
the pulled batches, then the landing into the lake; and the cost of an incremental pull with nothing new.

    .venv/bin/python bench/bench_receipts_pull.py [--days 7] [--per-day 400] [--repeats 3]

Data: the seeded supermarket generator (lines of `--days` days); each source holds them in the POS's
own column names. Prints median and range over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watershop_dagster.config import init_workspace, load_config  # noqa: E402
from watershop_dagster.receipts.generate import StoreProfile, generate_receipts  # noqa: E402
from watershop_dagster.receipts.ingest import ingest_receipt_days  # noqa: E402
from watershop_dagster.receipts.pull import pull_receipts  # noqa: E402

START = date(2026, 3, 2)
PAGE = 5000


def _rows(days: int, per_day: float) -> list[tuple]:
    frame = generate_receipts(START, START + timedelta(days=days - 1), seed=1,
                              profile=StoreProfile(receipts_per_day=per_day)).frame()
    return [(i + 1, *row) for i, row in enumerate(frame.select(
        "receipt_id", "timestamp", "product_id", "category", "quantity", "unit_price", "discount", "line_total").rows())]


COLUMNS = {"receipt_id": "bill_no", "timestamp": "sold_at", "product_id": "sku", "category": "dept", "quantity": "qty",
           "unit_price": "price", "discount": "disc", "line_total": "net"}
CREATE = ("create table {t} (line_id integer primary key, bill_no varchar(20), sold_at timestamp, sku varchar(20), "
          "dept varchar(40), qty numeric(10, 3), price numeric(10, 2), disc numeric(10, 2), net numeric(12, 2))")


def _workspace(root: Path, receipts: dict):
    config = init_workspace(root, shop_id="super", timezone="Europe/Berlin", partitions_start=date(2026, 1, 1))
    path = config.workspace_dir / "watershop.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["shops"][0]["receipts"] = {**receipts, "columns": COLUMNS, "cursor": "line_id", "batch_size": PAGE}
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def _sql_source(kind: str, rows: list[tuple]):
    table = f"bench_receipts_{uuid.uuid4().hex[:8]}"
    if kind == "postgres":
        import psycopg

        connection = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        dsn = "postgresql://postgres@127.0.0.1:5432/test"
    else:
        import pymysql

        connection = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
        dsn = "mysql://root@127.0.0.1:3306/test"
    cursor = connection.cursor()
    cursor.execute(CREATE.format(t=table))
    cursor.executemany(f"insert into {table} values ({', '.join(['%s'] * 9)})", rows)

    def drop():
        cursor.execute(f"drop table {table}")
        connection.close()

    return {"source": kind, "dsn": dsn, "table": table}, drop


def _http_source(rows: list[tuple]):
    records = [{"line_id": r[0], "bill_no": r[1], "sold_at": r[2].isoformat(sep=" "), "sku": r[3], "dept": r[4],
                "qty": r[5], "price": r[6], "disc": r[7], "net": r[8]} for r in rows]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            query = parse_qs(urlparse(self.path).query)
            since, page = int(query.get("since", ["0"])[0]), int(query.get("page", ["0"])[0])
            fresh = [r for r in records if r["line_id"] > since]
            body = json.dumps({"items": fresh[page * PAGE:(page + 1) * PAGE],
                               "next": f"/lines?since={since}&page={page + 1}" if len(fresh) > (page + 1) * PAGE
                               else None}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop():
        server.shutdown()
        server.server_close()

    return {"source": "http", "url": f"http://127.0.0.1:{server.server_port}/lines"}, stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-day", type=float, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = _rows(args.days, args.per_day)
    print(f"{len(rows)} lines over {args.days} days")
    for kind in ("postgres", "mariadb", "http"):
        full, empty, land = [], [], []
        for _ in range(args.repeats):
            receipts, stop = _http_source(rows) if kind == "http" else _sql_source(kind, rows)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    config = _workspace(Path(tmp), receipts)
                    began = time.perf_counter()
                    pulled = pull_receipts(config, "super")
                    full.append(time.perf_counter() - began)
                    assert pulled.lines == len(rows)
                    began = time.perf_counter()
                    ingest_receipt_days(config, "super", sorted(pulled.days))
                    land.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    assert pull_receipts(config, "super").lines == 0
                    empty.append(time.perf_counter() - began)
            finally:
                stop()
        rate = [len(rows) / s for s in full]
        print(f"{kind:9} full pull {statistics.median(rate):8.0f} lines/s (range {min(rate):.0f}-{max(rate):.0f}); "
              f"landing {len(rows) / statistics.median(land):8.0f} lines/s; "
              f"incremental pull with nothing new {1000 * statistics.median(empty):.0f} ms "
              f"(range {1000 * min(empty):.0f}-{1000 * max(empty):.0f})")


if __name__ == "__main__":
    main()
