"""The data-quality suites behind the POS and receipts asset checks: each rule's semantics, and that a
failure names the expectation that failed (GX 1.x, used before, returned results in its own order)."""

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from watershop_dagster import quality
from watershop_dagster.config import ShopConfig

DAY = date(2025, 3, 1)
MIDNIGHT = datetime(2025, 3, 1)


def _counts(outcome: quality.SuiteOutcome) -> dict[str, int]:
    return {name: detail["unexpected_count"] for name, detail in outcome.failures.items()}


def test_rules_judge_missing_values_only_by_not_null():
    df = pl.DataFrame({"n": [1, 1, None, 3, None], "x": [0.5, float("nan"), None, 9.0, 1.0]})
    outcome = quality.run_suite(df, {
        "n unique": quality.Unique("n"),  # both 1s break it; nulls are not duplicates
        "x present": quality.NotNull("x"),  # NaN counts as missing
        "x in [0, 1]": quality.Between("x", 0, 1),  # inclusive; NaN and null not judged
        "n in {1}": quality.InSet("n", [1]),
    })
    assert not outcome.success and outcome.evaluated_rows == 5
    assert _counts(outcome) == {"n unique": 2, "x present": 2, "x in [0, 1]": 1, "n in {1}": 1}
    assert outcome.failures["x in [0, 1]"]["examples"] == ["9.0"]


def test_pair_equal_ignores_rows_where_both_are_missing():
    df = pl.DataFrame({"a": [1.0, 2.0, None, None, 3.0], "b": [1.0, 2.5, None, 4.0, float("nan")]})
    outcome = quality.run_suite(df, {"a = b": quality.PairEqual("a", other="b")})
    assert _counts(outcome) == {"a = b": 3}
    assert outcome.failures["a = b"]["examples"] == ["(2.0, 2.5)", "(None, 4.0)", "(3.0, nan)"]


def test_bounds_are_inclusive_and_open_ended_bounds_work():
    df = pl.DataFrame({"v": [0.0, 10.0, -0.01, 10.01]})
    assert _counts(quality.run_suite(df, {"0..10": quality.Between("v", 0, 10)})) == {"0..10": 2}
    assert _counts(quality.run_suite(df, {">= 0": quality.Between("v", 0)})) == {">= 0": 1}


def _transactions(**overrides) -> pl.DataFrame:
    rows = {"transaction_id": ["t1", "t2", "t3"], "payment_mode": ["Cash", "UPI", "Coin"],
            "can_size": ["10L", "20L", "20L"], "payment_status": ["Paid", "Paid", "Unpaid"],
            "number_of_cans": [1, 2, 1], "amount": [20.0, 70.0, 35.0],
            "timestamp_local": [MIDNIGHT, MIDNIGHT + timedelta(hours=12),
                                MIDNIGHT + timedelta(days=1) - timedelta(microseconds=1)]}
    return pl.DataFrame({**rows, **overrides})


@pytest.mark.parametrize("column, values, expectation", [
    ("timestamp_local", [MIDNIGHT - timedelta(seconds=1), MIDNIGHT, MIDNIGHT + timedelta(days=1)],
     "timestamp inside the local day"),
    ("can_size", ["10L", "5L", "20L"], "can_size allowed"),
    ("transaction_id", ["t1", "t1", "t3"], "transaction_id unique"),
    ("number_of_cans", [1, 0, 1], "number_of_cans positive"),
    ("payment_mode", ["Cash", "cash", "UPI"], "payment_mode allowed"),
])
def test_a_failure_names_the_expectation_that_failed(column, values, expectation):
    assert quality.transactions_integrity(_transactions(), DAY).success
    outcome = quality.transactions_integrity(_transactions(**{column: values}), DAY)
    assert list(outcome.failures) == [expectation]
    assert outcome.describe().startswith(f"{expectation}: ")


def test_amount_matches_price_checks_priced_sizes_only():
    shop = ShopConfig(id="s", timezone="Asia/Kolkata", prices={"10L": 20.0})
    assert quality.amount_matches_price(_transactions(), shop).evaluated_rows == 1  # 20L has no price
    outcome = quality.amount_matches_price(_transactions(amount=[25.0, 70.0, 35.0]), shop)
    assert _counts(outcome) == {"amount = price x cans": 1}
    assert outcome.failures["amount = price x cans"]["examples"] == ["(25.0, 20.0)"]


def test_receipts_integrity_names_each_broken_rule():
    df = pl.DataFrame({
        "receipt_id": ["r1", "r1", None], "product_id": ["p1", "p2", "p3"], "category": ["dairy"] * 3,
        "timestamp": [MIDNIGHT, MIDNIGHT + timedelta(days=1), MIDNIGHT],
        "quantity": [2.0, 1.0, 1.0], "unit_price": [1.5, -1.0, 4.0], "discount": [0.0, 0.0, 0.5],
        "line_total": [3.0, -1.0, 9.0]})
    outcome = quality.receipts_integrity(df, DAY)
    assert _counts(outcome) == {"receipt_id present": 1, "unit_price non-negative": 1,
                                "line_total = quantity x unit_price - discount": 1,
                                "timestamp inside the local day": 1}
