"""Data-quality suites for lake datasets, run inside Dagster asset checks.

Each expectation is a named rule over a partition's rows with Great Expectations' semantics: missing
values (null, or NaN in a float column) are judged only by the not-null rule; a duplicated value makes
every row holding it unexpected; bounds are inclusive; a pair of columns must agree unless both are
missing. They are polars expressions: a shop-day holds a few hundred rows, and importing a validation
framework (3.6 CPU-s for GX 1.x, which these suites used before) cost more than the day's ingest."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import polars as pl

from watershop_dagster.config import CAN_SIZES, PAYMENT_MODES, PAYMENT_STATUSES, ShopConfig
from watershop_dagster.pos.ingest import MAX_AMOUNT, MAX_CANS

EXAMPLES_PER_FAILURE = 5  # unexpected values quoted in a failure's metadata


@dataclass(frozen=True)
class SuiteOutcome:
    success: bool
    evaluated_rows: int
    failures: dict[str, dict] = field(default_factory=dict)

    def describe(self) -> str:
        if self.success:
            return f"all expectations met on {self.evaluated_rows} rows"
        return "; ".join(f"{name}: {detail['unexpected_count']} unexpected" for name, detail in self.failures.items())


@dataclass(frozen=True)
class Expectation:
    """A rule on `column`: `unexpected` marks the rows of `df` breaking it."""
    column: str

    def unexpected(self, df: pl.DataFrame) -> pl.Expr:
        raise NotImplementedError

    def quoted(self, rows: pl.DataFrame) -> list[str]:
        return [str(value) for value in rows[self.column]]


def _missing(df: pl.DataFrame, column: str) -> pl.Expr:
    """Null, or NaN in a float column: what a pandas-based validator counts as missing."""
    values = pl.col(column)
    return values.is_null() | values.is_nan() if df.schema[column].is_float() else values.is_null()


@dataclass(frozen=True)
class NotNull(Expectation):
    def unexpected(self, df: pl.DataFrame) -> pl.Expr:
        return _missing(df, self.column)


@dataclass(frozen=True)
class Unique(Expectation):
    def unexpected(self, df: pl.DataFrame) -> pl.Expr:
        return ~_missing(df, self.column) & pl.col(self.column).is_duplicated()


@dataclass(frozen=True)
class InSet(Expectation):
    allowed: Collection[object] = ()

    def unexpected(self, df: pl.DataFrame) -> pl.Expr:
        return ~_missing(df, self.column) & ~pl.col(self.column).is_in(list(self.allowed))


@dataclass(frozen=True)
class Between(Expectation):
    low: object | None = None  # inclusive; None: unbounded
    high: object | None = None

    def unexpected(self, df: pl.DataFrame) -> pl.Expr:
        values, outside = pl.col(self.column), pl.lit(False)
        if self.low is not None:
            outside = outside | (values < self.low)
        if self.high is not None:
            outside = outside | (values > self.high)
        return ~_missing(df, self.column) & outside


@dataclass(frozen=True)
class PairEqual(Expectation):
    """`column` equals `other` on every row where at least one of them is present."""
    other: str = ""

    def unexpected(self, df: pl.DataFrame) -> pl.Expr:
        a_absent, b_absent = _missing(df, self.column), _missing(df, self.other)
        return (a_absent != b_absent) | (~a_absent & (pl.col(self.column) != pl.col(self.other)))

    def quoted(self, rows: pl.DataFrame) -> list[str]:
        return [str(pair) for pair in zip(rows[self.column], rows[self.other])]


def run_suite(df: pl.DataFrame, expectations: dict[str, Expectation]) -> SuiteOutcome:
    """Every expectation over every row; a failure counts the rows breaking it and quotes a few."""
    failures = {}
    for name, expectation in expectations.items():
        broken = df.filter(expectation.unexpected(df).fill_null(False))
        if broken.height:
            failures[name] = {"unexpected_count": broken.height,
                              "examples": expectation.quoted(broken.head(EXAMPLES_PER_FAILURE))}
    return SuiteOutcome(success=not failures, evaluated_rows=df.height, failures=failures)


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """First and last representable local timestamps of `day` (naive, as stored in the lake)."""
    start = datetime.combine(day, time())
    return start, start + timedelta(days=1) - timedelta(microseconds=1)


def transactions_integrity(df: pl.DataFrame, day: date) -> SuiteOutcome:
    """Blocking suite: keys, allowed values and timestamps inside the partition's local day."""
    low, high = local_day_bounds(day)
    return run_suite(df, {
        "transaction_id unique": Unique("transaction_id"),
        "transaction_id present": NotNull("transaction_id"),
        "payment_mode allowed": InSet("payment_mode", PAYMENT_MODES),
        "can_size allowed": InSet("can_size", CAN_SIZES),
        "payment_status allowed": InSet("payment_status", PAYMENT_STATUSES),
        "number_of_cans positive": Between("number_of_cans", 1, MAX_CANS),
        "amount non-negative and bounded": Between("amount", 0, MAX_AMOUNT),
        "timestamp inside the local day": Between("timestamp_local", low, high),
    })


def amount_matches_price(df: pl.DataFrame, shop: ShopConfig) -> SuiteOutcome:
    """Warning suite: amount = configured price x cans, for can sizes that have a price."""
    prices = pl.DataFrame({"can_size": list(shop.prices), "price": list(shop.prices.values())},
                          schema={"can_size": pl.Utf8, "price": pl.Float64})
    priced = df.join(prices, on="can_size", how="inner").select(
        amount=pl.col("amount").round(2),
        expected_amount=(pl.col("price") * pl.col("number_of_cans")).round(2),
    )
    return run_suite(priced, {"amount = price x cans": PairEqual("amount", other="expected_amount")})


def receipts_integrity(df: pl.DataFrame, day: date) -> SuiteOutcome:
    """Blocking suite for a shop-day's receipt lines: keys present, numbers plausible, each line's total
    agreeing with quantity x unit price - discount, timestamps inside the partition's local day."""
    from watershop_dagster.receipts.schema import LINE_TOTAL_TOLERANCE, MAX_QUANTITY

    low, high = local_day_bounds(day)
    checked = df.with_columns(
        (pl.col("line_total") - (pl.col("quantity") * pl.col("unit_price") - pl.col("discount"))).abs()
        .alias("total_residual"))
    return run_suite(checked, {
        **{f"{column} present": NotNull(column) for column in ("receipt_id", "product_id", "category", "timestamp")},
        "quantity bounded": Between("quantity", -MAX_QUANTITY, MAX_QUANTITY),
        "unit_price non-negative": Between("unit_price", 0),
        "line_total = quantity x unit_price - discount": Between("total_residual", 0, LINE_TOTAL_TOLERANCE),
        "timestamp inside the local day": Between("timestamp", low, high),
    })
