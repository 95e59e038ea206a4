from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path
from time import perf_counter

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from watershop_dagster.config import (
    CAN_SIZES,
    PAYMENT_MODES,
    PAYMENT_STATUSES,
    POS_COLUMNS,
    ShopConfig,
    init_workspace,
)
from watershop_dagster.pos.generate import DEFAULT_PRICES, generate_shop_day, write_transaction_csvs

SHOP = ShopConfig(id="shop1", timezone="Asia/Kolkata", prices={"10L": 20, "20L": 35})
MONDAY = date(2024, 1, 1)


def _days(start: date, count: int) -> list[date]:
    return [start + timedelta(days=offset) for offset in range(count)]


def _month(shop: ShopConfig = SHOP, seed: int = 0, days: int = 28, per_day: float = 60) -> pl.DataFrame:
    return pl.concat([generate_shop_day(shop, day, seed, per_day) for day in _days(MONDAY, days)])


def test_columns_are_exactly_the_pos_export():
    df = generate_shop_day(SHOP, MONDAY)
    assert df.columns == list(POS_COLUMNS)
    assert df.height > 0
    assert df.null_count().drop("customer_id").sum_horizontal().item() == 0


def test_same_inputs_same_output_and_seed_matters():
    assert_frame_equal(generate_shop_day(SHOP, MONDAY, seed=7), generate_shop_day(SHOP, MONDAY, seed=7))
    assert not generate_shop_day(SHOP, MONDAY, seed=7).equals(generate_shop_day(SHOP, MONDAY, seed=8))


def test_a_day_does_not_depend_on_which_days_were_generated_before(tmp_path: Path):
    config = init_workspace(tmp_path / "range", shop_id="shop1")
    write_transaction_csvs(config, MONDAY, MONDAY + timedelta(days=4), seed=3)
    alone = init_workspace(tmp_path / "alone", shop_id="shop1")
    write_transaction_csvs(alone, MONDAY + timedelta(days=3), MONDAY + timedelta(days=3), seed=3)
    name = "shop1/transactions_2024-01-04.csv"
    assert (config.transactions_landing / name).read_bytes() == (alone.transactions_landing / name).read_bytes()


def test_amount_is_price_times_cans_with_default_prices_for_missing_sizes():
    shop = ShopConfig(id="shop2", prices={"20L": 40})
    df = _month(shop, days=7)
    prices = {"10L": DEFAULT_PRICES["10L"], "20L": 40.0}
    expected = pl.col("can_size").replace_strict(prices, return_dtype=pl.Float64) * pl.col("number_of_cans")
    assert df.select((pl.col("amount") == expected).all()).item()
    assert set(df["can_size"]) == set(CAN_SIZES)


def test_ids_are_unique_and_well_formed_across_shops_and_days():
    other = ShopConfig(id="shop2", timezone="Asia/Kolkata")
    df = pl.concat([_month(SHOP, days=5), _month(other, days=5)])
    assert df["transaction_id"].is_unique().all()
    assert df["transaction_id"].str.contains(r"^shop[12]-2024010[1-5]-\d{4}$").all()
    assert df["customer_id"].drop_nulls().str.contains(r"^C\d{4,}$").all()


def test_values_are_known_and_timestamps_fall_in_opening_hours_of_the_day():
    shop = ShopConfig(id="late", opening_time=time(9, 30), closing_time=time(18, 0))
    for day in _days(MONDAY, 5):
        df = generate_shop_day(shop, day)
        stamps = df["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S")
        assert (stamps.dt.date() == day).all()
        assert stamps.dt.time().min() >= time(9, 30) and stamps.dt.time().max() < time(18, 0)
        assert stamps.is_sorted()
    df = _month()
    assert set(df["payment_mode"]) <= set(PAYMENT_MODES)
    assert set(df["payment_status"]) <= set(PAYMENT_STATUSES)
    assert df["number_of_cans"].min() >= 1


def test_population_looks_like_a_water_shop():
    df = _month(days=56).with_columns(
        day=pl.col("timestamp").str.slice(0, 10).str.to_date(),
        hour=pl.col("timestamp").str.slice(11, 2).cast(pl.Int32),
    )
    per_day = df.group_by("day").len()
    sundays = per_day.filter(pl.col("day").dt.weekday() == 7)["len"].mean()
    weekdays = per_day.filter(pl.col("day").dt.weekday() <= 5)["len"].mean()
    assert 50 < weekdays < 70 and sundays < 0.8 * weekdays

    modes = df["payment_mode"].value_counts(normalize=True)
    share = dict(zip(modes["payment_mode"], modes["proportion"]))
    assert share["Coin"] < 0.05 and share["UPI"] > 0.3 and share["Cash"] > 0.3
    assert 0.05 < df["customer_id"].null_count() / df.height < 0.3  # walk-ins

    visits = df.drop_nulls("customer_id").group_by("customer_id").agg(
        days=pl.col("day").n_unique(), unpaid=(pl.col("payment_status") == "Unpaid").mean()
    )
    assert visits.filter(pl.col("days") >= 18).height >= 20  # regulars: every 1-3 days
    assert visits.filter((pl.col("unpaid") > 0.4) & (pl.col("days") > 10)).height >= 1  # repeat defaulters

    hourly = df.group_by("hour").len()
    count = dict(zip(hourly["hour"], hourly["len"]))
    assert count[8] > 2 * count[13] and count[18] > 2 * count[13]


def test_no_nonexistent_local_times_on_a_dst_day():
    shop = ShopConfig(id="ny", timezone="America/New_York", opening_time=time(0, 0), closing_time=time(23, 59))
    df = generate_shop_day(shop, date(2024, 3, 10), transactions_per_day=3000)
    hours = df["timestamp"].str.slice(11, 2)
    assert df.height > 1000 and not (hours == "02").any()


def test_write_transaction_csvs_writes_one_file_per_shop_day(tmp_path: Path):
    config = init_workspace(tmp_path, shop_id="shop1")
    paths = write_transaction_csvs(config, MONDAY, MONDAY + timedelta(days=2), seed=1, transactions_per_day=20)
    assert [p.relative_to(config.transactions_landing).as_posix() for p in paths] == [
        f"shop1/transactions_2024-01-0{d}.csv" for d in (1, 2, 3)
    ]
    assert sorted(p.name for p in (config.transactions_landing / "shop1").iterdir()) == [p.name for p in paths]
    back = pl.read_csv(paths[1], infer_schema=False)
    expected = generate_shop_day(config.shop("shop1"), MONDAY + timedelta(days=1), 1, 20)
    assert_frame_equal(back, expected.cast(pl.Utf8))


def test_write_transaction_csvs_rejects_unknown_shops(tmp_path: Path):
    config = init_workspace(tmp_path, shop_id="shop1")
    with pytest.raises(KeyError):
        write_transaction_csvs(config, MONDAY, MONDAY, shop_ids=["nope"])


def test_large_volume_is_fast():
    shop = ShopConfig(id="busy")
    start = perf_counter()
    rows = sum(generate_shop_day(shop, day, transactions_per_day=275).height for day in _days(MONDAY, 60))
    assert rows > 14000
    assert perf_counter() - start < 10  # ~1 ms per shop-day; generous for a loaded machine
