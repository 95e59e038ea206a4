"""The supermarket's canonical receipt line-item schema and the validation of a CSV export into it.

One row per receipt line; refunds and voids are lines with a negative quantity (and line_total).
Exports of other tills (Square, Loyverse, Lightspeed, Odoo) name their columns differently: a
`columns` mapping (canonical name -> export's name) reads them, as `pos_columns` does for the water
shop. Every data line of a file ends up either as a valid row or as a quarantine row with a reason;
a bad line never stops the rest of the file.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Mapping

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.vocabulary import RECEIPT_COLUMNS

RECEIPTS_DATASET = catalog.RECEIPTS.name
RECEIPTS_QUARANTINE_DATASET = catalog.RECEIPTS_QUARANTINE.name
OPTIONAL_COLUMNS = frozenset({"till", "customer_id", "payment_mode", "product_name", "discount"})
# A line's total may differ from quantity x unit_price - discount by rounding: at most this much.
LINE_TOTAL_TOLERANCE = 0.011
MAX_QUANTITY = 10_000

#: validated rows: the stored columns plus `date`, the day (hive partition) a row lands in. The lake
#: files never hold `date`: it is their folder, and `read_receipts` adds it back from there.
RECEIPTS_SCHEMA: dict[str, pl.DataType] = {
    **{name: dtype for name, dtype in catalog.RECEIPTS.schema.items() if name not in ("source_file", "source_line")},
    "date": pl.Date(),
    "source_file": pl.Utf8(),
    "source_line": pl.Int32(),
}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = dict(catalog.RECEIPTS_QUARANTINE.schema)
#: quarantined lines plus `date`, the day of their timestamp where it could be read (else null)
BATCH_QUARANTINE_SCHEMA: dict[str, pl.DataType] = {**QUARANTINE_SCHEMA, "date": pl.Date()}
_RAW_LIMIT = 500
# Local wall-clock time; an explicit UTC offset is accepted and dropped (tills print local time).
_TIMESTAMP = r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?\s*(?:[Zz]|[+-]\d{2}:?\d{2})?$"


class ReceiptsSchemaError(ValueError):
    """A `columns` mapping that names unknown canonical columns."""


@dataclass(frozen=True)
class ReceiptsBatch:
    """A file's valid rows (RECEIPTS_SCHEMA) and its quarantined lines (BATCH_QUARANTINE_SCHEMA)."""

    valid: pl.DataFrame
    quarantine: pl.DataFrame


def _normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _header_positions(header: list[str], columns: Mapping[str, str]) -> tuple[dict[str, int], str | None]:
    """Position of each canonical column in the header, or why the header cannot be used."""
    unknown = sorted(set(columns) - set(RECEIPT_COLUMNS))
    if unknown:
        raise ReceiptsSchemaError(f"unknown receipt column(s) {unknown}; known: {list(RECEIPT_COLUMNS)}")
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        positions.setdefault(_normalise(name), []).append(index)
    found, missing, repeated = {}, [], []
    for column in RECEIPT_COLUMNS:
        name = columns.get(column, column)
        hits = positions.get(_normalise(name), [])
        if len(hits) == 1:
            found[column] = hits[0]
        elif hits:
            repeated.append(repr(name))
        elif column not in OPTIONAL_COLUMNS:
            missing.append(repr(name))
    if missing:
        return found, f"missing required column(s) {', '.join(missing)}; header has {header}"
    if repeated:
        return found, f"column(s) {', '.join(repeated)} appear more than once in the header"
    return found, None


def _snippet(text: str) -> str:
    text = text.rstrip("\r\n")
    return text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "…"


def _records(text: str, source_file: str, columns: Mapping[str, str]):
    """Well-formed records as canonical-column strings, plus (line, raw, reason) problems."""
    lines = io.StringIO(text, newline="").readlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        return {c: [] for c in RECEIPT_COLUMNS}, [], [], [(None, "", "empty file")]
    header = next(csv.reader([lines[header_at]]))
    positions, reason = _header_positions(header, columns)
    if reason:
        return {c: [] for c in RECEIPT_COLUMNS}, [], [], [(None, _snippet(lines[header_at]), reason)]
    values: dict[str, list[str]] = {c: [] for c in RECEIPT_COLUMNS}
    numbers, raws, problems = [], [], []
    for offset, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line]))
        except csv.Error as exc:
            problems.append((offset, _snippet(line), f"unreadable CSV line: {exc}"))
            continue
        if len(fields) != len(header):
            problems.append((offset, _snippet(line), f"expected {len(header)} fields, got {len(fields)}"))
            continue
        for column in RECEIPT_COLUMNS:
            values[column].append(fields[positions[column]].strip() if column in positions else "")
        numbers.append(offset)
        raws.append(_snippet(line))
    return values, numbers, raws, problems


def _reason() -> pl.Expr:
    """Every problem of a row joined with "; "; "" for a valid row."""
    qty, price, discount, total = (pl.col(f"{c}_v") for c in ("quantity", "unit_price", "discount", "line_total"))

    def empty(column: str) -> pl.Expr:
        return pl.when(pl.col(column) == "").then(pl.lit(f"empty {column}"))

    def bad(column: str, condition: pl.Expr, template: str) -> pl.Expr:
        return pl.when((pl.col(column) != "") & condition).then(pl.format(template, pl.col(column)))

    expected = qty * price - discount
    checks = [
        *(empty(c) for c in ("receipt_id", "timestamp", "product_id", "category", "quantity", "unit_price", "line_total")),
        bad("timestamp", pl.col("timestamp_v").is_null(), "unparseable timestamp '{}' (expected YYYY-MM-DD HH:MM:SS)"),
        bad("quantity", ~qty.is_finite().fill_null(False), "quantity '{}' is not a number"),
        bad("quantity", (qty == 0).fill_null(False), "quantity '{}' is zero"),
        bad("quantity", (qty.abs() > MAX_QUANTITY).fill_null(False), f"quantity '{{}}' exceeds {MAX_QUANTITY}"),
        bad("unit_price", ~price.is_finite().fill_null(False), "unit_price '{}' is not a number"),
        bad("unit_price", (price < 0).fill_null(False), "unit_price '{}' is negative"),
        bad("discount", ~discount.is_finite().fill_null(False), "discount '{}' is not a number"),
        bad("line_total", ~total.is_finite().fill_null(False), "line_total '{}' is not a number"),
        pl.when(((expected - total).abs() > LINE_TOTAL_TOLERANCE).fill_null(False)).then(
            pl.format("line_total {} != quantity x unit_price - discount = {}", total, expected.round(2))
        ),
    ]
    return pl.concat_str(checks, separator="; ", ignore_nulls=True).alias("reason")


def validate_receipts_text(text: str, source_file: str, columns: Mapping[str, str] | None = None) -> ReceiptsBatch:
    """Split an export's text into valid canonical rows and quarantined lines with reasons."""
    values, numbers, raws, problems = _records(text, source_file, columns or {})
    rows = pl.DataFrame(
        {**values, "source_line": numbers, "raw": raws},
        schema={**dict.fromkeys(RECEIPT_COLUMNS, pl.Utf8), "source_line": pl.Int32, "raw": pl.Utf8},
    )
    parts = pl.col("timestamp").str.extract_groups(_TIMESTAMP)
    checked = rows.with_columns(
        pl.concat_str(
            parts.struct.field("1"), pl.lit(" "), parts.struct.field("2"), parts.struct.field("3").fill_null(":00")
        )
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False)
        .alias("timestamp_v"),
        *(pl.col(c).cast(pl.Float64, strict=False).alias(f"{c}_v") for c in ("quantity", "unit_price", "line_total")),
        pl.when(pl.col("discount") == "").then(pl.lit("0")).otherwise(pl.col("discount"))
        .cast(pl.Float64, strict=False).alias("discount_v"),
    ).with_columns(_reason())
    valid = checked.filter(pl.col("reason") == "").select(
        "receipt_id",
        pl.col("timestamp_v").alias("timestamp"),
        pl.col("timestamp_v").dt.date().alias("date"),
        *(pl.col(c).replace("", None) for c in ("till", "customer_id", "payment_mode")),
        "product_id",
        pl.col("product_name").replace("", None),
        "category",
        *(pl.col(f"{c}_v").alias(c) for c in ("quantity", "unit_price", "discount", "line_total")),
        pl.lit(source_file).alias("source_file"),
        "source_line",
    ).cast(RECEIPTS_SCHEMA).select(list(RECEIPTS_SCHEMA))
    rejected = checked.filter(pl.col("reason") != "").select(
        pl.lit(source_file).alias("source_file"), "source_line", "raw", "reason",
        pl.col("timestamp_v").dt.date().alias("date"),
    )
    problem_rows = pl.DataFrame(
        [(source_file, line, raw, reason, None) for line, raw, reason in problems], schema=BATCH_QUARANTINE_SCHEMA,
        orient="row",
    )
    quarantine = pl.concat([rejected.cast(BATCH_QUARANTINE_SCHEMA), problem_rows]).sort("source_line",
                                                                                         nulls_last=False)
    return ReceiptsBatch(valid=valid, quarantine=quarantine)


def validate_receipts_csv(path: str | Path, columns: Mapping[str, str] | None = None,
                          source_file: str | None = None) -> ReceiptsBatch:
    """Validate one CSV export (UTF-8, optional BOM; undecodable bytes are replaced and the line quarantined).
    `source_file` names it in the lineage columns (default: the file name)."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    batch = validate_receipts_text(text, source_file or path.name, columns)
    if "\ufffd" not in text:
        return batch
    broken = batch.valid.filter(
        pl.any_horizontal(pl.col(c).str.contains("\ufffd", literal=True).fill_null(False)
                          for c in ("receipt_id", "product_id", "product_name", "category"))
    )
    if broken.is_empty():
        return batch
    moved = broken.select(
        "source_file", "source_line", pl.lit("").alias("raw"), pl.lit("line is not valid UTF-8 text").alias("reason"),
        "date",
    ).cast(BATCH_QUARANTINE_SCHEMA)
    return ReceiptsBatch(
        valid=batch.valid.join(broken.select("source_line"), on="source_line", how="anti"),
        quarantine=pl.concat([batch.quarantine, moved]).sort("source_line", nulls_last=False),
    )


def write_receipts_partitions(batch: ReceiptsBatch, lake_root: Path, shop_id: str, day: date) -> tuple[Path, Path]:
    """Replace the shop-day's receipts and quarantine partitions (atomic, idempotent): the batch's
    valid rows of `day` (without the `date` column: it is the folder) and all its quarantined lines."""
    keys = {"shop_id": shop_id, "date": day}
    return (
        lake.write_dataset(batch.valid.filter(pl.col("date") == day), lake_root, catalog.RECEIPTS, **keys),
        lake.write_dataset(batch.quarantine, lake_root, catalog.RECEIPTS_QUARANTINE, **keys),
    )


def read_receipts(lake_root: Path, shop_id: str = "*") -> pl.DataFrame:
    """Every valid receipt line in the lake for the shop (all shops with "*"), `date` from the folder."""
    root = Path(lake_root) / RECEIPTS_DATASET
    shops = [p.name.removeprefix("shop_id=") for p in sorted(root.glob("shop_id=*"))] if shop_id == "*" else [shop_id]
    frames = [lake.read_days(lake_root, catalog.RECEIPTS, shop) for shop in shops]
    frames = [frame for frame in frames if frame.height]
    return pl.concat(frames).select(list(RECEIPTS_SCHEMA)) if frames else pl.DataFrame(schema=RECEIPTS_SCHEMA)
