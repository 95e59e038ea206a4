"""Great Expectations (1.x) suites for lake datasets, run inside Dagster asset checks.

GX is imported lazily: it takes seconds to import and only the checks need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import polars as pl

from watershop_dagster.config import CAN_SIZES, PAYMENT_MODES, PAYMENT_STATUSES, ShopConfig
from watershop_dagster.pos.ingest import MAX_AMOUNT, MAX_CANS


@dataclass(frozen=True)
class SuiteOutcome:
    success: bool
    evaluated_rows: int
    failures: dict[str, dict] = field(default_factory=dict)

    def describe(self) -> str:
        if self.success:
            return f"all expectations met on {self.evaluated_rows} rows"
        return "; ".join(f"{name}: {detail['unexpected_count']} unexpected" for name, detail in self.failures.items())


def _run_suite(df: pl.DataFrame, expectations: dict[str, object]) -> SuiteOutcome:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("lake")
        .add_dataframe_asset("partition")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": df.to_pandas()})
    )
    suite = gx.ExpectationSuite(name="suite", expectations=list(expectations.values()))
    result = batch.validate(suite)
    failures = {}
    for name, item in zip(expectations, result.results):
        if not item.success:
            failures[name] = {
                "unexpected_count": int(item.result.get("unexpected_count") or 0),
                "examples": [str(value) for value in (item.result.get("partial_unexpected_list") or [])[:5]],
            }
    return SuiteOutcome(success=bool(result.success), evaluated_rows=df.height, failures=failures)


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """First and last representable local timestamps of `day` (naive, as stored in the lake)."""
    start = datetime.combine(day, time())
    return start, start + timedelta(days=1) - timedelta(microseconds=1)


def transactions_integrity(df: pl.DataFrame, day: date) -> SuiteOutcome:
    """Blocking suite: keys, allowed values and timestamps inside the partition's local day."""
    import great_expectations as gx

    low, high = local_day_bounds(day)
    expectations = {
        "transaction_id unique": gx.expectations.ExpectColumnValuesToBeUnique(column="transaction_id"),
        "transaction_id present": gx.expectations.ExpectColumnValuesToNotBeNull(column="transaction_id"),
        "payment_mode allowed": gx.expectations.ExpectColumnValuesToBeInSet(
            column="payment_mode", value_set=list(PAYMENT_MODES)
        ),
        "can_size allowed": gx.expectations.ExpectColumnValuesToBeInSet(column="can_size", value_set=list(CAN_SIZES)),
        "payment_status allowed": gx.expectations.ExpectColumnValuesToBeInSet(
            column="payment_status", value_set=list(PAYMENT_STATUSES)
        ),
        "number_of_cans positive": gx.expectations.ExpectColumnValuesToBeBetween(
            column="number_of_cans", min_value=1, max_value=MAX_CANS
        ),
        "amount non-negative and bounded": gx.expectations.ExpectColumnValuesToBeBetween(
            column="amount", min_value=0, max_value=MAX_AMOUNT
        ),
        "timestamp inside the local day": gx.expectations.ExpectColumnValuesToBeBetween(
            column="timestamp_local", min_value=low, max_value=high
        ),
    }
    return _run_suite(df, expectations)


def amount_matches_price(df: pl.DataFrame, shop: ShopConfig) -> SuiteOutcome:
    """Warning suite: amount = configured price x cans, for can sizes that have a price."""
    import great_expectations as gx

    prices = pl.DataFrame({"can_size": list(shop.prices), "price": list(shop.prices.values())},
                          schema={"can_size": pl.Utf8, "price": pl.Float64})
    priced = df.join(prices, on="can_size", how="inner").select(
        amount=pl.col("amount").round(2),
        expected_amount=(pl.col("price") * pl.col("number_of_cans")).round(2),
    )
    expectations = {
        "amount = price x cans": gx.expectations.ExpectColumnPairValuesToBeEqual(
            column_A="amount", column_B="expected_amount"
        )
    }
    return _run_suite(priced, expectations)


def receipts_integrity(df: pl.DataFrame, day: date) -> SuiteOutcome:
    """Blocking suite for a shop-day's receipt lines: keys present, numbers plausible, each line's total
    agreeing with quantity x unit price - discount, timestamps inside the partition's local day."""
    import great_expectations as gx

    from watershop_dagster.receipts.schema import LINE_TOTAL_TOLERANCE, MAX_QUANTITY

    low, high = local_day_bounds(day)
    checked = df.with_columns(
        (pl.col("line_total") - (pl.col("quantity") * pl.col("unit_price") - pl.col("discount"))).abs()
        .alias("total_residual"))
    expectations = {
        **{f"{column} present": gx.expectations.ExpectColumnValuesToNotBeNull(column=column)
           for column in ("receipt_id", "product_id", "category", "timestamp")},
        "quantity bounded": gx.expectations.ExpectColumnValuesToBeBetween(
            column="quantity", min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY),
        "unit_price non-negative": gx.expectations.ExpectColumnValuesToBeBetween(column="unit_price", min_value=0),
        "line_total = quantity x unit_price - discount": gx.expectations.ExpectColumnValuesToBeBetween(
            column="total_residual", min_value=0, max_value=LINE_TOTAL_TOLERANCE),
        "timestamp inside the local day": gx.expectations.ExpectColumnValuesToBeBetween(
            column="timestamp", min_value=low, max_value=high),
    }
    return _run_suite(checked, expectations)
