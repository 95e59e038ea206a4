"""Ingest POS CSV exports into the lake: valid rows to `transactions`, everything else to quarantine.

Plain files (no quotes, control characters, bare CRs or undecodable bytes: what POS exports usually
are) are split on commas by polars, all of a range's files in one pass; any other file goes through
Python's csv module (quoting, exact line numbers, recovery after a broken line), which lands the same
rows for plain files (tests compare the two). Polars validates all rows at once. Every input line
ends up in exactly one place: a valid row or a quarantine record, in exactly one day's partition.
Both datasets are rewritten whole on every run, so re-running a partition is idempotent.
`ingest_partitions` does many days in one pass (backfills): per-partition overhead, not per-row
work, dominates at a few hundred rows per shop-day.

Rules a reader of the quarantine should know (each rejected row carries its reason):
- Numbers are bounded to what the marts hold (decimal(18,2) sums) and to plausibility: `amount` is finite,
  non-negative, at most MAX_AMOUNT and, when the shop configures a price for the can size, at most
  AMOUNT_PRICE_FACTOR x price x cans; `number_of_cans` is a whole number from 1 to MAX_CANS.
- Ids (`transaction_id`, `customer_id`) holding control or invisible formatting characters (NUL, bidi
  overrides, zero-width) are rejected, not cleaned: an id is compared byte for byte downstream. Other
  fields with such characters fail their own parsing. Quarantined text shows them as \\xNN escapes.
- Undated files place rows by their own timestamps. A row that cannot be placed on a day that runs -
  its timestamp is later than the file's last modification (+ CLOCK_SKEW), or before
  `partitions_start` - is quarantined on the file's home day: the local day the file was last modified,
  clamped to [partitions_start, today]. Lines that cannot be dated go there too.
- Duplicate transaction_ids within a shop-day, independent of file names and order: identical rows
  (same values after normalising) land once and the other copies are quarantined as exact duplicates;
  rows that disagree are all quarantined ("conflicting duplicate"), since nothing says which is right.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.config import (
    CAN_SIZES,
    PAYMENT_MODES,
    PAYMENT_STATUSES,
    POS_COLUMNS,
    ShopConfig,
    WatershopConfig,
)

VALID_DATASET = catalog.TRANSACTIONS.name
QUARANTINE_DATASET = catalog.TRANSACTIONS_QUARANTINE.name

TRANSACTIONS_SCHEMA: dict[str, pl.DataType] = dict(catalog.TRANSACTIONS.schema)
QUARANTINE_SCHEMA: dict[str, pl.DataType] = dict(catalog.TRANSACTIONS_QUARANTINE.schema)

OPTIONAL_COLUMNS = frozenset({"customer_id"})  # walk-in only shops may not export it at all
MAX_CANS = 1000
# Largest amount of one sale. The marts sum amounts into decimal(18, 2) (< 1e16): with this bound a
# sum overflows only past a billion sales. A water-can sale is at most MAX_CANS x a few hundred.
MAX_AMOUNT = 10_000_000
# When the shop configures a price for the can size, an amount above this many times price x cans is
# a typo (an extra digit or two), not a sale. Discounts (lower amounts) pass; the warning check
# `amount_matches_price` reports every mismatch.
AMOUNT_PRICE_FACTOR = 10
# A row of an undated file may be this much later than the file's modification time (POS and file
# server clocks differ a little); later than that it is not a sale that happened yet.
CLOCK_SKEW = timedelta(hours=1)
_SHOWN_LIMIT = 60  # characters of a bad value quoted in a reason
MAX_ID_LENGTH = 128  # transaction and customer ids: longer is a broken export, not an id
_RAW_LIMIT = 500  # characters of a bad line kept in quarantine
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_BAD_BYTES = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by surrogateescape
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Characters that must never be part of an id: C0/C1 controls (incl. tab and newlines), and invisible
# formatting (zero-width, bidi embeddings/overrides/isolates, word joiner, BOM) that make two ids that
# print the same compare different.
_UNPRINTABLE = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_UNPRINTABLE_RE = re.compile(f"[{_UNPRINTABLE}]")
_TIMESTAMP = (
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<hm>\d{2}:\d{2})(?P<sec>:\d{2}(?:\.\d+)?)?"
    r"\s*(?P<offset>[Zz]|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True)
class IngestResult:
    """What one partition run read and wrote."""

    valid: pl.DataFrame
    rejected: pl.DataFrame
    files: list[str]
    valid_path: Path
    rejected_path: Path  # absent when nothing was rejected (the quarantine is sparse)

    @property
    def valid_count(self) -> int:
        return self.valid.height

    @property
    def rejected_count(self) -> int:
        return self.rejected.height


# --- finding the files -------------------------------------------------------------------------


def parse_date_from_name(path: str | os.PathLike) -> date | None:
    """The first valid YYYY-MM-DD in the file name; None when the name carries no date."""
    return _date_in_name(os.path.basename(os.fspath(path)))


@lru_cache(maxsize=1 << 16)
def _date_in_name(name: str) -> date | None:
    """Cached: every partition run looks at the names of all the shop's files."""
    for match in _DATE_IN_NAME.finditer(name):
        try:
            return date(*map(int, match.groups()))
        except ValueError:
            continue
    return None


def _is_landing_csv(name: str) -> bool:
    """Hidden and temp files (ours, editors', Excel's ~$ locks) are never read."""
    return name.lower().endswith(".csv") and not name.startswith((".", "~"))


def _landing_names(config: WatershopConfig, shop_id: str) -> list[str]:
    """The shop's CSVs as sorted paths relative to landing/transactions (strings: this runs per partition)."""
    config.shop(shop_id)  # unknown shops are an error, not an empty list
    root = str(config.transactions_landing)
    names = []
    for folder, dirs, files in os.walk(os.path.join(root, shop_id)):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        prefix = os.path.relpath(folder, root).replace(os.sep, "/")
        names.extend(f"{prefix}/{name}" for name in files if _is_landing_csv(name))
    if len(config.shops) == 1 and os.path.isdir(root):
        names.extend(entry.name for entry in os.scandir(root) if entry.is_file() and _is_landing_csv(entry.name))
    return sorted(names)


def landing_files(config: WatershopConfig, shop_id: str) -> list[Path]:
    """The shop's CSVs, sorted; a single-shop workspace may also drop them straight into landing/transactions/."""
    return [config.transactions_landing / name for name in _landing_names(config, shop_id)]


def _names_for_days(config: WatershopConfig, shop_id: str, days: set[date]) -> list[str]:
    wanted = days | {None}
    return [name for name in _landing_names(config, shop_id) if parse_date_from_name(name) in wanted]


def files_for_partition(config: WatershopConfig, shop_id: str, day: date) -> list[Path]:
    """Files named for `day`, plus undated files (their rows are placed by their own timestamps)."""
    return [config.transactions_landing / name for name in _names_for_days(config, shop_id, {day})]


# --- splitting one file into records -----------------------------------------------------------


@dataclass
class _FileRows:
    """One file split into well-formed records (by column) and the problems found on the way."""

    source_file: str
    home_date: date  # file-name date, or for undated files the local date of its modification time
    dated: bool
    written: datetime | None = None  # modification time (UTC) of an undated file
    columns: dict[str, list[str]] = field(default_factory=lambda: {column: [] for column in POS_COLUMNS})
    lines: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    problems: list[tuple[int | None, str, str]] = field(default_factory=list)
    # a plain file (see _is_plain): the header position of each POS column; its records are the
    # kept lines (`raws`), split later in polars, and `columns` stays empty
    plain_positions: dict[str, int] | None = None


def _snippet(text: str) -> str:
    """Printable, bounded text for the quarantine's raw column (undecodable bytes as \\xNN)."""
    text = text.rstrip("\r\n")
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "…"


def _printable(text: str | None) -> str | None:
    """`text` with control and invisible formatting characters escaped (\\x00, \\u202e), so nothing
    unprintable reaches the quarantine or the marts."""
    if text is None or not _UNPRINTABLE_RE.search(text):
        return text
    return _UNPRINTABLE_RE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def _normalise_header(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


@lru_cache(maxsize=256)
def _map_columns(
    header: tuple[str, ...], pos_columns: tuple[tuple[str, str], ...]
) -> tuple[dict[str, int], str | None]:
    """Header position of each POS column, or the reason the header cannot be used (cached: one header
    per export format)."""
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        positions.setdefault(_normalise_header(name), []).append(index)
    found, missing, repeated, renamed = {}, [], [], dict(pos_columns)
    for column in POS_COLUMNS:
        export_name = renamed.get(column, column)
        hits = positions.get(_normalise_header(export_name), [])
        if len(hits) == 1:
            found[column] = hits[0]
        elif hits:
            repeated.append(f"'{export_name}'")
        elif column not in OPTIONAL_COLUMNS:
            missing.append(f"'{export_name}'")
    if missing:
        return found, f"missing required column(s) {', '.join(missing)}; header has {list(header)}"
    if repeated:
        return found, f"column(s) {', '.join(repeated)} appear more than once in the header"
    return found, None


def _split_records(lines: list[str], first: int, width: int, rows: _FileRows) -> list[list[str]]:
    """Records after the header with `width` fields. A bad line is quarantined and parsing resumes on
    the next line, so an unclosed quote costs one line, not the rest of the file."""
    records: list[list[str]] = []
    add_record, add_line, add_raw = records.append, rows.lines.append, rows.raws.append  # hot loop
    position = first  # index of the next line to parse; line numbers are 1-based
    while position < len(lines):
        reader = csv.reader(itertools.islice(lines, position, None))
        end = 0  # lines this reader has consumed
        try:
            for fields in reader:
                start, end = end + 1, reader.line_num
                number = position + start
                if len(fields) == width:
                    add_record(fields)
                    add_line(number)
                    add_raw(lines[number - 1] if end == start else "".join(lines[number - 1 : position + end]))
                elif len(fields) > 1 or (fields and fields[0].strip()):
                    reason = _field_count_reason(len(fields), width, multiline=end > start)
                    rows.problems.append((number, _snippet(lines[number - 1]), reason))
                    if end > start:  # the record swallowed the lines after it: parse them again
                        position = number
                        break
            else:
                position = len(lines)
        except csv.Error as exc:
            rows.problems.append((position + end + 1, _snippet(lines[position + end]), f"unreadable CSV line: {exc}"))
            position += end + 1
    return records


def _is_plain(text: str) -> bool:
    """True when every line is its fields joined by commas (no quotes, control characters, bare CRs
    or undecodable bytes), so splitting on commas gives what the csv module gives."""
    return (
        '"' not in text
        and not _CONTROL.search(text)
        and text.count("\r") == text.count("\r\n")
        and (text.isascii() or not _BAD_BYTES.search(text))
    )


def _keep_plain_lines(lines: list[str], first: int, width: int, rows: _FileRows) -> None:
    """`_split_records` for a plain file: the lines with `width` fields are kept whole, to be split
    with every other plain file's in one polars pass (`_plain_frame`); blank lines are skipped and
    lines with another field count quarantined, as the csv module would."""
    commas, body = width - 1, lines[first:]
    if all(line.count(",") == commas for line in body):  # the usual file: every line a record
        rows.lines, rows.raws = list(range(first + 1, first + 1 + len(body))), body
        return
    for number, line in enumerate(body, start=first + 1):
        found = line.count(",")
        if found == commas:
            rows.lines.append(number)
            rows.raws.append(line)
        elif found or line.strip():
            rows.problems.append((number, _snippet(line), _field_count_reason(found + 1, width, multiline=False)))


def _field_count_reason(count: int, width: int, multiline: bool) -> str:
    if multiline:
        return f"unterminated quoted field (expected {width} fields)"
    return f"expected {width} fields, got {count}"


def _drop_undecodable(records: list[list[str]], rows: _FileRows) -> list[list[str]]:
    """Move records holding bytes that are not UTF-8 to the problems; only called when there are such bytes."""
    kept, lines, raws = [], [], []
    for record, line, raw in zip(records, rows.lines, rows.raws):
        if _BAD_BYTES.search(raw):
            rows.problems.append((line, _snippet(raw), "line is not valid UTF-8 text"))
        else:
            kept.append(record)
            lines.append(line)
            raws.append(raw)
    rows.lines, rows.raws = lines, raws
    return kept


def _read_file(path: Path, rows: _FileRows, shop: ShopConfig) -> _FileRows:
    """Split a landing file into records; whole-file problems become a single line-less problem."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # "Unicode text" from Excel and Windows tools
        try:  # a file cut mid-character keeps its whole characters; its last line is then incomplete
            data = data[: len(data) // 2 * 2].decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            rows.problems.append((None, _snippet(repr(data[:80])), f"not valid UTF-16 text: {exc.reason}"))
            return rows
    text = data.decode("utf-8-sig", errors="surrogateescape")
    lines = io.StringIO(text, newline="").readlines()
    header_index = next((index for index, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        rows.problems.append((None, "", "empty file"))
        return rows
    header_line = lines[header_index]
    if _BAD_BYTES.search(header_line) or _CONTROL.search(header_line):
        rows.problems.append((None, _snippet(header_line[:80]), "not a CSV text file (binary data or not UTF-8)"))
        return rows
    header = next(csv.reader([header_line]))
    positions, reason = _map_columns(tuple(header), tuple(sorted(shop.pos_columns.items())))
    if reason:
        rows.problems.append((None, _snippet(header_line), reason))
        return rows
    if _is_plain(text):
        rows.plain_positions = positions
        _keep_plain_lines(lines, header_index + 1, len(header), rows)
        return rows
    records = _split_records(lines, header_index + 1, len(header), rows)
    if not text.isascii() and _BAD_BYTES.search(text):
        records = _drop_undecodable(records, rows)
    by_position = list(zip(*records)) if records else [()] * len(header)
    rows.columns = {
        column: list(by_position[positions[column]]) if column in positions else [""] * len(records)
        for column in POS_COLUMNS
    }
    return rows


def _home_date(written: datetime, shop: ShopConfig, earliest: date | None) -> date:
    """The day an undated file reports what cannot go elsewhere: the local day it was last modified,
    clamped to the days that have partitions (a clock in the future or at 1970 must not hide rows)."""
    day = min(written.astimezone(shop.tz).date(), datetime.now(shop.tz).date())
    return max(day, earliest) if earliest else day


def _file_rows(path: Path, source_file: str, shop: ShopConfig, earliest: date | None = None) -> _FileRows:
    dated = parse_date_from_name(source_file)
    if dated:
        rows = _FileRows(source_file, dated, True)
    else:
        # A modification time in the future (a wrong clock) counts as now: no row may wait for it.
        written = min(datetime.fromtimestamp(path.stat().st_mtime, UTC), datetime.now(UTC))
        rows = _FileRows(source_file, _home_date(written, shop, earliest), False, written)
    if _UNPRINTABLE_RE.search(source_file):
        rows.problems.append((None, "", "file name contains control or invisible characters; rename the file"))
        return rows
    return _read_file(path, rows, shop)


# --- validation ---------------------------------------------------------------------------------
# Expressions are built once per time zone: building them costs more than running them on a shop-day.

#: a file's lineage, on each of its rows (home_date as days since the epoch until the rows are joined)
_LINEAGE_SCHEMA = {"file": pl.Int32, "source_file": pl.Utf8, "home_date": pl.Int32, "dated": pl.Boolean,
                   "written": pl.Datetime("us", "UTC")}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _rows_frame(files: list[_FileRows]) -> pl.DataFrame:
    """All well-formed records of the files as strings, with their lineage: one row per file,
    joined onto its records by the file's index."""
    split_in_python = [rows for rows in files if rows.plain_positions is None]
    plain = [rows for rows in files if rows.plain_positions is not None]
    ordered = split_in_python + plain
    lineage = pl.DataFrame(
        {
            "file": range(len(ordered)),
            "source_file": [rows.source_file for rows in ordered],
            "home_date": [rows.home_date.toordinal() - _EPOCH_ORDINAL for rows in ordered],  # ints convert fast
            "dated": [rows.dated for rows in ordered],
            "written": [rows.written for rows in ordered],
        },
        schema=_LINEAGE_SCHEMA,
    )
    records = pl.concat([_python_split_frame(split_in_python), _plain_frame(plain, first=len(split_in_python))],
                        how="vertical")
    return (
        records.join(lineage, on="file", how="left", maintain_order="left")
        .drop("file")
        .with_columns(pl.col("home_date").cast(pl.Date))
    )


def _chained(parts) -> list:
    return list(itertools.chain.from_iterable(parts))


def _lines(files: list[_FileRows], first: int) -> dict[str, object]:
    """The kept lines' numbers and text, and the index of the file each is from (`first` for files[0])."""
    return {
        "file": np.repeat(np.arange(first, first + len(files), dtype=np.int32), [len(rows.lines) for rows in files]),
        "source_line": _chained(rows.lines for rows in files),
        "raw": _chained(rows.raws for rows in files),
    }


_LINES_SCHEMA = {"file": pl.Int32, "source_line": pl.Int32, "raw": pl.Utf8}
_RECORDS_SCHEMA = {**dict.fromkeys(POS_COLUMNS, pl.Utf8), **_LINES_SCHEMA}


def _python_split_frame(files: list[_FileRows]) -> pl.DataFrame:
    """The records the csv module split (files[k] is file k)."""
    return pl.DataFrame(
        {**{column: _chained(rows.columns[column] for rows in files) for column in POS_COLUMNS}, **_lines(files, 0)},
        schema=_RECORDS_SCHEMA,
    )


def _plain_frame(files: list[_FileRows], first: int) -> pl.DataFrame:
    """The kept lines of plain files split on commas in one pass (a Python list per field cost more
    than the rest of the ingest), each file's column positions joined by file (files[k] is file
    `first` + k)."""
    positions = pl.DataFrame(
        {
            "file": range(first, first + len(files)),
            **{f"position_{column}": [rows.plain_positions.get(column) for rows in files] for column in POS_COLUMNS},
        },
        schema={"file": pl.Int32, **{f"position_{column}": pl.Int32 for column in POS_COLUMNS}},
    )
    fields = pl.col("raw").str.strip_chars_end("\r\n").str.split(",")
    return (
        pl.DataFrame(_lines(files, first), schema=_LINES_SCHEMA)
        .join(positions, on="file", how="left", maintain_order="left")
        .with_columns(fields.alias("fields"))
        .select(
            *[pl.col("fields").list.get(pl.col(f"position_{column}")).fill_null("").alias(column)
              for column in POS_COLUMNS],
            *_LINES_SCHEMA,
        )
    )


def _normalise_value(value: str) -> str:
    return value.replace(" ", "").lower()


def _canonical(column: str, allowed: tuple[str, ...]) -> pl.Expr:
    """Map case and spacing variants ("upi", "20 l", "paid") to the canonical value; null if unknown."""
    lookup = {_normalise_value(value): value for value in allowed}
    key = pl.col(column).str.replace_all(" ", "", literal=True).str.to_lowercase()
    return key.replace_strict(lookup, default=None, return_dtype=pl.Utf8)


@lru_cache(maxsize=32)
def _parse_stages(timezone: str) -> tuple[tuple[pl.Expr, ...], ...]:
    """Typed columns from the raw strings, in dependency order; an explicit offset wins over the shop's zone."""
    parts, offset, naive = pl.col("parts"), pl.col("offset"), pl.col("naive")
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    offset_minutes = (
        pl.when(offset == "Z")
        .then(0)
        .otherwise((offset.str.slice(1, 2).cast(pl.Int64) * 60 + offset.str.slice(3, 2).cast(pl.Int64)) * sign)
    )
    return (
        (pl.col(list(POS_COLUMNS)).str.strip_chars(),),
        (
            pl.col("timestamp").str.extract_groups(_TIMESTAMP).alias("parts"),
            _canonical("payment_mode", PAYMENT_MODES).alias("mode"),
            _canonical("can_size", CAN_SIZES).alias("size"),
            _canonical("payment_status", PAYMENT_STATUSES).alias("status"),
            pl.col("number_of_cans").cast(pl.Float64, strict=False).alias("cans_value"),
            pl.col("amount").cast(pl.Float64, strict=False).alias("amount_value"),
        ),
        (
            pl.concat_str(
                parts.struct.field("date"), pl.lit(" "), parts.struct.field("hm"),
                parts.struct.field("sec").fill_null(":00"),
            )
            .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False)
            .alias("naive"),
            parts.struct.field("offset").str.replace(":", "", literal=True).str.to_uppercase().alias("offset"),
        ),
        (
            pl.when(offset.is_null())
            .then(
                naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
                .dt.convert_time_zone("UTC")
            )
            .otherwise((naive - pl.duration(minutes=offset_minutes)).dt.replace_time_zone("UTC"))
            .alias("timestamp_utc"),
            pl.when(pl.col("amount_value") == 0).then(0.0).otherwise("amount_value").alias("amount_value"),  # -0
        ),
        (pl.col("timestamp_utc").dt.convert_time_zone(timezone).dt.replace_time_zone(None).alias("timestamp_local"),),
        (pl.coalesce(pl.col("timestamp_local").dt.date(), naive.dt.date()).alias("row_date"),),
    )


def _placement(earliest: date | None) -> tuple[pl.Expr, ...]:
    """`partition_date`: a dated file's rows belong to its day; an undated file's rows to their own date,
    unless that date is unreadable, later than the file was written, or before `earliest` (no partition
    would ever run for it): then to the file's home day, so each row is reported exactly once."""
    row_date, undated = pl.col("row_date"), ~pl.col("dated")
    after_written = undated & (pl.col("timestamp_utc") > pl.col("written") + CLOCK_SKEW).fill_null(False)
    before_start = undated & (row_date < earliest).fill_null(False) if earliest else pl.lit(False)
    return (
        after_written.alias("after_written"),
        before_start.alias("before_start"),
        pl.lit(earliest, pl.Date).alias("earliest"),
        pl.when(pl.col("dated") | row_date.is_null() | after_written | before_start)
        .then("home_date")
        .otherwise(row_date)
        .alias("partition_date"),
    )


def _shown(column: str) -> pl.Expr:
    """The field as quoted in a reason, cut short: a reason is a group key in quarantine_summary."""
    value = pl.col(column)
    return pl.when(value.str.len_chars() > _SHOWN_LIMIT).then(
        pl.concat_str(value.str.slice(0, _SHOWN_LIMIT), pl.lit("…"))
    ).otherwise(value)


def _check(condition: pl.Expr, template: str, *values: pl.Expr) -> pl.Expr:
    """The reason text where `condition` holds, else null."""
    return pl.when(condition).then(pl.format(template, *values) if values else pl.lit(template))


def _value_check(column: str, bad: pl.Expr, template: str) -> pl.Expr:
    """`template` filled with the field where `bad` holds, or "empty <column>" when the field is empty."""
    return pl.when(pl.col(column) == "").then(pl.lit(f"empty {column}")).when(bad).then(
        pl.format(template, _shown(column))
    )


def _id_checks(column: str) -> tuple[pl.Expr, ...]:
    value = pl.col(column)
    return (
        _check(value.str.contains(f"[{_UNPRINTABLE}]"), f"{column} '{{}}' contains control or invisible characters",
               _shown(column)),
        _check(value.str.len_chars() > MAX_ID_LENGTH, f"{column} '{{}}' is longer than {MAX_ID_LENGTH} characters",
               _shown(column)),
    )


@lru_cache(maxsize=32)
def _checks(timezone: str) -> tuple[pl.Expr, ...]:
    """One expression per problem a row can have: its reason text, or null."""
    ts, cans, amount = _shown("timestamp"), pl.col("cans_value"), pl.col("amount_value")
    return (
        _check(pl.col("transaction_id") == "", "empty transaction_id"),
        *_id_checks("transaction_id"),
        *_id_checks("customer_id"),
        _value_check(
            "timestamp", pl.col("naive").is_null(), "unparseable timestamp '{}' (expected YYYY-MM-DD HH:MM:SS)"
        ),
        _check(
            pl.col("naive").is_not_null() & pl.col("timestamp_utc").is_null(),
            f"nonexistent local time '{{}}' in {timezone} (DST gap)", ts,
        ),
        _check(
            pl.col("dated") & (pl.col("row_date") != pl.col("home_date")),
            "timestamp '{}' is on {} but the file is dated {}", ts, pl.col("row_date"), pl.col("home_date"),
        ),
        _check(
            pl.col("after_written"),
            "timestamp '{}' is after the file was last written ({} UTC): a future date or a wrong clock",
            ts, pl.col("written").dt.strftime("%Y-%m-%d %H:%M:%S"),
        ),
        _check(pl.col("before_start"), "timestamp '{}' is before partitions_start {}: no partition covers it",
               ts, pl.col("earliest")),
        *(
            _value_check(column, pl.col(parsed).is_null(), f"unknown {column} '{{}}'")
            for column, parsed in (("payment_mode", "mode"), ("can_size", "size"), ("payment_status", "status"))
        ),
        _value_check(
            "number_of_cans",
            ~(cans.is_between(1, MAX_CANS) & (cans == cans.floor())).fill_null(False),
            f"number_of_cans '{{}}' is not a whole number from 1 to {MAX_CANS}",
        ),
        _value_check("amount", ~amount.is_finite().fill_null(False), "amount '{}' is not a number"),
        _check(amount.is_finite() & (amount < 0), "amount '{}' is negative", _shown("amount")),
        _check(amount.is_finite() & (amount > MAX_AMOUNT), f"amount '{{}}' is above the largest sale {MAX_AMOUNT}",
               _shown("amount")),
    )


@lru_cache(maxsize=32)
def _price_check(prices: tuple[tuple[str, float], ...]) -> pl.Expr:
    """Amount above AMOUNT_PRICE_FACTOR x price x cans, for can sizes with a configured price."""
    price = pl.col("size").replace_strict(dict(prices), default=None, return_dtype=pl.Float64)
    ceiling = price * pl.col("cans_value") * AMOUNT_PRICE_FACTOR
    amount = pl.col("amount_value")
    return _check(
        (amount.is_finite() & (amount <= MAX_AMOUNT) & pl.col("cans_value").is_between(1, MAX_CANS)
         & (amount > ceiling)).fill_null(False),
        f"amount '{{}}' is more than {AMOUNT_PRICE_FACTOR} x price x cans ({AMOUNT_PRICE_FACTOR} x {{}} x {{}})",
        _shown("amount"), price, pl.col("cans_value").cast(pl.Int64, strict=False),
    )


def _reason(shop: ShopConfig) -> pl.Expr:
    """Every problem of a row joined with "; ", or "" for a valid row."""
    checks = [*_checks(shop.timezone)]
    if shop.prices:
        checks.append(_price_check(tuple(sorted(shop.prices.items()))))
    return pl.concat_str(checks, separator="; ", ignore_nulls=True).alias("reason")


def _parsed(rows: pl.DataFrame, timezone: str, earliest: date | None) -> pl.DataFrame:
    """The rows with their typed columns and `partition_date` added."""
    for stage in (*_parse_stages(timezone), _placement(earliest)):
        rows = rows.with_columns(*stage)
    return rows


def _validate(rows: pl.DataFrame, shop: ShopConfig, days: set[date], earliest: date | None) -> pl.DataFrame:
    """Typed columns, `partition_date` and `reason` ("" when valid) for the rows belonging to `days`."""
    mine = _parsed(rows, shop.timezone, earliest).filter(pl.col("partition_date").is_in(sorted(days)))
    return mine.with_columns(_reason(shop))


_KEY = ["partition_date", "transaction_id"]
_CONTENT = ["timestamp_utc", "customer_id", "mode", "size", "cans_value", "amount_value", "status"]
_MAX_LISTED = 5  # locations named in a conflicting-duplicate reason


def _duplicate_reason() -> pl.Expr:
    """Per valid row: "" to keep it, else why not. Identical copies land once (the first by file and
    line keeps its lineage); when the copies disagree, none lands."""
    copies, versions = pl.len().over(_KEY), pl.struct(_CONTENT).n_unique().over(_KEY)
    first = pl.int_range(pl.len()).over(_KEY) == 0
    where = pl.format("{}:{}", "source_file", "source_line")
    return (
        pl.when((copies == 1) | ((versions == 1) & first))
        .then(pl.lit(""))
        .when(versions == 1)
        .then(pl.format(
            "exact duplicate of transaction_id '{}' landed from {}", _shown("transaction_id"),
            where.first().over(_KEY),
        ))
        .otherwise(pl.format(
            "conflicting duplicate transaction_id '{}': {} rows disagree ({}); none landed",
            _shown("transaction_id"), copies, where.head(_MAX_LISTED).str.join(", ").over(_KEY),
        ))
        .alias("reason")
    )


def _mark_duplicates(checked: pl.DataFrame) -> pl.DataFrame:
    """Resolve repeated transaction_ids per day without regard to file names or order (see the module
    docstring); rejected rows block nothing."""
    valid = checked.filter(pl.col("reason") == "")
    if not valid.select(_KEY).is_duplicated().any():  # the usual case: skip the sort and window functions
        return checked
    valid = valid.sort("source_file", "source_line").with_columns(_duplicate_reason())
    return pl.concat([valid, checked.filter(pl.col("reason") != "")])


def _valid_rows(checked: pl.DataFrame) -> pl.DataFrame:
    return (
        checked.filter(pl.col("reason") == "")
        .sort("partition_date", "timestamp_utc", "transaction_id")
        .select(
            "partition_date", "transaction_id", "timestamp_local", "timestamp_utc",
            pl.col("customer_id").replace("", None),
            payment_mode="mode", can_size="size", number_of_cans="cans_value", amount="amount_value",
            payment_status="status", source_file="source_file", source_line="source_line",
        )
        .cast(TRANSACTIONS_SCHEMA)
    )


def _rejected_rows(checked: pl.DataFrame, files: list[_FileRows], days: set[date]) -> pl.DataFrame:
    """Row-level rejections plus the file and line-splitting problems of files reported on `days`."""
    problems = [
        (rows.home_date, rows.source_file, line, raw, reason)
        for rows in files
        if rows.home_date in days
        for line, raw, reason in rows.problems
    ]
    schema = {"partition_date": pl.Date, **QUARANTINE_SCHEMA}
    rejected = checked.filter(pl.col("reason") != "").select(
        "partition_date", "source_file", "source_line",
        pl.col("raw").str.strip_chars_end("\r\n").str.slice(0, _RAW_LIMIT), "reason",
    )
    rejected = pl.concat([rejected, pl.DataFrame(problems, schema=schema, orient="row")]).cast(schema)
    text = ("source_file", "raw", "reason")
    if rejected.select(pl.any_horizontal(pl.col(text).str.contains(f"[{_UNPRINTABLE}]").any())).item():
        rejected = rejected.with_columns(pl.col(column).map_elements(_printable, pl.Utf8) for column in text)
    return rejected.sort("partition_date", "source_file", "source_line", "reason", nulls_last=False)


def _by_day(df: pl.DataFrame, days: list[date], schema: dict[str, pl.DataType]) -> dict[date, pl.DataFrame]:
    """Split on partition_date, with an empty frame of the right schema for days without rows."""
    parts = df.partition_by("partition_date", as_dict=True, include_key=False)
    empty = pl.DataFrame(schema=schema)  # built once: a frame with a schema costs ~1.5 ms
    return {day: parts.get((day,), empty) for day in days}


# --- the entry points ---------------------------------------------------------------------------


def rows_dates(path: Path, shop: ShopConfig, partitions_start: date | None = None) -> set[date]:
    """The days whose partitions a landing file feeds, as ingestion will assign them (for sensors):
    the date in its name, or for an undated file its rows' local dates plus its home day when some
    lines cannot be placed (pass the config's `partitions_start` to agree with ingestion exactly)."""
    named = parse_date_from_name(path)
    if named:
        return {named}
    rows = _file_rows(path, path.name, shop, partitions_start)
    days = set(_parsed(_rows_frame([rows]), shop.timezone, partitions_start)["partition_date"])
    return days | {rows.home_date} if rows.problems else days


def ingest_partitions(config: WatershopConfig, shop_id: str, days: Iterable[date]) -> dict[date, IngestResult]:
    """Validate the shop's landing files for `days` and replace both lake partitions of each day.

    Reads every file once and validates all days in one query; a day without files still gets its
    (empty) transactions partition and loses any quarantine file, so a re-run after a file was
    removed clears the old rows.
    """
    shop, wanted = config.shop(shop_id), set(days)
    root = config.transactions_landing
    start = config.partitions_start
    files = [_file_rows(root / name, name, shop, start) for name in _names_for_days(config, shop_id, wanted)]
    checked = _mark_duplicates(_validate(_rows_frame(files), shop, wanted, start))
    ordered = sorted(wanted)
    valid = _by_day(_valid_rows(checked), ordered, TRANSACTIONS_SCHEMA)
    rejected = _by_day(_rejected_rows(checked, files, wanted), ordered, QUARANTINE_SCHEMA)
    results, lake_root = {}, config.lake_root
    for day in ordered:
        keys = {"shop_id": shop_id, "date": day.isoformat()}
        results[day] = IngestResult(
            valid=valid[day],
            rejected=rejected[day],
            files=[rows.source_file for rows in files if not rows.dated or rows.home_date == day],
            valid_path=lake.write_partition(valid[day], lake_root, VALID_DATASET, **keys),
            rejected_path=lake.write_partition(rejected[day], lake_root, QUARANTINE_DATASET, **keys),
        )
    return results


def ingest_partition(config: WatershopConfig, shop_id: str, day: date) -> IngestResult:
    """Validate one shop-day's landing files and replace its two lake partitions with the result."""
    return ingest_partitions(config, shop_id, [day])[day]
