"""Pull receipt lines from the POS's database (PostgreSQL, MariaDB) or a paged JSON API.

A pull lands what it fetched as CSV batches in the canonical columns, one per local day, under
landing/receipts/<shop>/pulled/<YYYY-MM-DD>.csv (lines whose timestamp names no day go to
`undated.csv`); `ingest.ingest_receipt_days` then validates them like any export, so a bad line is
quarantined with its reason and never stops the pull.

Incremental: the shop's high-water mark (the last `cursor` value and, for ties, the last `key`) is
kept in <lake>/state/receipts_pull/<shop>.json and written atomically only after the batches it
covers are on disk. Idempotent: each batch file is keyed by the line's `key`, so a line fetched
again (a pull killed before its mark was saved, a `--from/--to` re-pull of a window, an updated
row) replaces its copy instead of adding one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import polars as pl

from watershop_dagster.atomic import atomic_write, atomic_write_text
from watershop_dagster.config import ReceiptsConfig, ShopConfig, WatershopConfig
from watershop_dagster.receipts.ingest import PULLED_FOLDER
from watershop_dagster.vocabulary import RECEIPT_COLUMNS

STATE_FOLDER = Path("state") / "receipts_pull"
KEY_COLUMN = "source_key"  # the line's key in a pulled batch (an extra column the validation ignores)
UNDATED_FILE = "undated.csv"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")


class PullError(RuntimeError):
    """A source that cannot be reached or read (the mark stays where it was)."""


@dataclass(frozen=True)
class Mark:
    """Where the last pull stopped: the cursor value and, among equal cursors, the key."""

    cursor: Any
    key: Any


@dataclass
class PullResult:
    lines: int = 0  # lines fetched (new or re-fetched)
    days: set[date] = field(default_factory=set)  # days whose batch files changed
    files: list[Path] = field(default_factory=list)
    mark_before: Mark | None = None
    mark_after: Mark | None = None


# --- secrets and state -------------------------------------------------------------------------


def expand_env(text: str) -> str:
    """`${VAR}` replaced from the environment; an unset variable is an error, never an empty secret."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise PullError(f"environment variable {name} (named in the receipts config) is not set")
        return os.environ[name]
    return _ENV_REF.sub(value, text)


def _encode(value: Any) -> dict:
    if isinstance(value, datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return {"type": "str", "value": str(value)}
    return {"type": "int" if isinstance(value, int) else "decimal", "value": str(value)}


def _decode(encoded: dict) -> Any:
    kind, value = encoded["type"], encoded["value"]
    return {"datetime": datetime.fromisoformat, "date": date.fromisoformat, "int": int, "decimal": Decimal,
            "str": str}[kind](value)


def _fingerprint(settings: ReceiptsConfig) -> str:
    """Which source the mark belongs to: another table, query or URL starts from the beginning."""
    fields = (settings.source, settings.table, settings.query, settings.url, settings.cursor, settings.key)
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def state_path(config: WatershopConfig, shop_id: str) -> Path:
    return config.lake_root / STATE_FOLDER / f"{shop_id}.json"


def read_mark(config: WatershopConfig, shop_id: str) -> Mark | None:
    path, settings = state_path(config, shop_id), config.shop(shop_id).receipts
    if settings is None or not path.is_file():
        return None
    state = json.loads(path.read_text())
    if state.get("source") != _fingerprint(settings):
        return None
    return Mark(_decode(state["cursor"]), _decode(state["key"]))


def _save_mark(config: WatershopConfig, shop_id: str, mark: Mark) -> None:
    settings = config.shop(shop_id).receipts
    atomic_write_text(state_path(config, shop_id), json.dumps({
        "source": _fingerprint(settings), "cursor": _encode(mark.cursor), "key": _encode(mark.key),
        "saved_at": datetime.now().astimezone().isoformat(),
    }, indent=2))


# --- turning fetched records into canonical text ----------------------------------------------


def _text(value: Any, shop: ShopConfig) -> str:
    """A field as an export would print it; an aware time in the shop's local time (tills print local)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(shop.tz).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _canonical(record: dict, settings: ReceiptsConfig, shop: ShopConfig) -> dict[str, str]:
    row = {column: _text(record.get(settings.columns.get(column, column)), shop) for column in RECEIPT_COLUMNS}
    key = record.get(settings.key or settings.cursor)
    # a line without a key is still kept (and quarantined by validation if it is bad): keyed by its content
    row[KEY_COLUMN] = _text(key, shop) if key is not None else "content:" + hashlib.sha256(
        json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]
    return row


def _day_file(row: dict[str, str]) -> str:
    match = _DAY.match(row["timestamp"])
    if match:
        try:
            return f"{date.fromisoformat(match.group(1)).isoformat()}.csv"
        except ValueError:
            pass
    return UNDATED_FILE


def _merge(path: Path, rows: list[dict[str, str]]) -> None:
    """Upsert `rows` into the batch file by key (a later copy wins), atomically."""
    schema = {column: pl.Utf8 for column in (*RECEIPT_COLUMNS, KEY_COLUMN)}
    new = pl.DataFrame(rows, schema=schema)
    if path.is_file():
        old = pl.read_csv(path, schema=schema).fill_null("")
        new = pl.concat([old.join(new.select(KEY_COLUMN), on=KEY_COLUMN, how="anti"), new])
    merged = new.unique(KEY_COLUMN, keep="last", maintain_order=True).sort("timestamp", KEY_COLUMN)
    atomic_write(path, lambda tmp: merged.write_csv(tmp))


# --- sources -----------------------------------------------------------------------------------


def _sql_connection(settings: ReceiptsConfig):
    dsn = expand_env(settings.dsn)
    try:
        if settings.source == "postgres":
            import psycopg
            from psycopg.rows import dict_row

            return psycopg.connect(dsn, row_factory=dict_row, connect_timeout=int(settings.timeout_seconds))
        import pymysql

        url = urlparse(dsn)
        return pymysql.connect(
            host=url.hostname or "127.0.0.1", port=url.port or 3306, user=unquote(url.username or "root"),
            password=unquote(url.password or ""), database=url.path.lstrip("/") or None,
            cursorclass=pymysql.cursors.DictCursor, connect_timeout=int(settings.timeout_seconds),
        )
    except Exception as exc:  # the drivers' errors share no base class
        raise PullError(f"cannot connect to the {settings.source} receipts source: {exc}") from exc


def _quote(name: str, source: str) -> str:
    """A (schema-qualified) identifier quoted for the dialect; a quote inside a name is doubled."""
    quote = '"' if source == "postgres" else "`"
    return ".".join(quote + part.replace(quote, quote * 2) + quote for part in name.split("."))


def _sql_batches(settings: ReceiptsConfig, mark: Mark | None, window: tuple[datetime, datetime] | None
                 ) -> Iterator[list[dict]]:
    """Keyset pages ordered by (cursor, key): past the mark, or every line of the time window."""
    q = lambda name: _quote(name, settings.source)  # noqa: E731
    cursor, key = q(settings.cursor), q(settings.key or settings.cursor)
    relation = q(settings.table) if settings.table else f"({settings.query.rstrip().rstrip(';')})"
    timestamp = q(settings.columns.get("timestamp", "timestamp"))
    with _sql_connection(settings) as connection:
        position = mark
        while True:
            where, params = [], []
            if position is not None:
                where.append(f"({cursor} > %s or ({cursor} = %s and {key} > %s))")
                params += [position.cursor, position.cursor, position.key]
            if window is not None:
                where.append(f"{timestamp} >= %s and {timestamp} < %s")
                params += list(window)
            sql = (f"select * from {relation} as pulled where {' and '.join(where) or 'true'} "
                   f"order by {cursor}, {key} limit {int(settings.batch_size)}")
            with connection.cursor() as rows:
                rows.execute(sql, params)
                page = list(rows.fetchall())
            if not page:
                return
            yield page
            last = page[-1]
            position = Mark(last[settings.cursor], last[settings.key or settings.cursor])
            if len(page) < settings.batch_size:
                return


def _http_batches(settings: ReceiptsConfig, mark: Mark | None, window: tuple[datetime, datetime] | None
                  ) -> Iterator[list[dict]]:
    """The API's pages: the first with the mark (or the window), then each `next` link until none."""
    import requests

    headers = {name: expand_env(value) for name, value in settings.headers.items()}
    url = expand_env(settings.url)
    params: dict[str, str] | None = {}
    if mark is not None:
        params[settings.since_param] = mark.cursor.isoformat() if isinstance(mark.cursor, date) else str(mark.cursor)
    if window is not None:
        params[settings.from_param], params[settings.to_param] = (w.isoformat(sep=" ") for w in window)
    while url:
        try:
            response = requests.get(url, params=params, headers=headers, timeout=settings.timeout_seconds)
            response.raise_for_status()
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise PullError(f"receipts API page {url}: {exc}") from exc
        items = body.get(settings.items_key) if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise PullError(f"receipts API page {url}: no list under {settings.items_key!r}")
        yield [item if isinstance(item, dict) else {} for item in items]
        following = body.get(settings.next_key) if isinstance(body, dict) else None
        url, params = (urljoin(url, following) if following else None), None


def _past(record: dict, settings: ReceiptsConfig, mark: Mark | None) -> bool:
    """An API may ignore `since`: lines at or before the mark are not new."""
    if mark is None:
        return True
    cursor, key = record.get(settings.cursor), record.get(settings.key or settings.cursor)
    try:
        return (cursor, key) > (mark.cursor, mark.key)
    except TypeError:
        return True


# --- the entry point ---------------------------------------------------------------------------


def pull_receipts(config: WatershopConfig, shop_id: str, start: date | None = None, end: date | None = None
                  ) -> PullResult:
    """Fetch the shop's new receipt lines (past its mark), or with `start`/`end` every line of those
    local days again, into its pulled batch files. Returns the days whose batches changed."""
    shop = config.shop(shop_id)
    settings = shop.receipts
    if settings is None or not settings.pulled:
        raise PullError(f"shop {shop_id!r} has no database or API receipts source")
    window = None
    if start is not None or end is not None:
        first, last = start or end, end or start
        window = (datetime.combine(first, datetime.min.time()), datetime.combine(last + timedelta(days=1),
                                                                                 datetime.min.time()))
    mark = read_mark(config, shop_id) if window is None else None
    result = PullResult(mark_before=mark, mark_after=mark)
    batches = _http_batches if settings.source == "http" else _sql_batches
    folder = config.receipts_landing / shop_id / PULLED_FOLDER
    for page in batches(settings, mark, window):
        page = [record for record in page if window is not None or _past(record, settings, mark)]
        if not page:
            continue
        by_file: dict[str, list[dict[str, str]]] = {}
        for record in page:
            row = _canonical(record, settings, shop)
            by_file.setdefault(_day_file(row), []).append(row)
        for name, rows in sorted(by_file.items()):
            _merge(folder / name, rows)
            result.files.append(folder / name)
            if name != UNDATED_FILE:
                result.days.add(date.fromisoformat(name.removesuffix(".csv")))
        result.lines += len(page)
        with_cursor = [r for r in page if r.get(settings.cursor) is not None]
        if window is None and with_cursor:
            last = max(with_cursor, key=lambda r: (r[settings.cursor], r.get(settings.key or settings.cursor)))
            result.mark_after = Mark(last[settings.cursor], last.get(settings.key or settings.cursor))
            _save_mark(config, shop_id, result.mark_after)  # after its batches are on disk
    result.files = sorted(set(result.files))
    return result
