from __future__ import annotations

import os
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from watershop_dagster import lake
from watershop_dagster.config import WatershopConfig, init_workspace, load_config
from watershop_dagster.pos.generate import write_transaction_csvs
from watershop_dagster.pos.ingest import (
    QUARANTINE_SCHEMA,
    TRANSACTIONS_SCHEMA,
    files_for_partition,
    ingest_partition,
    ingest_partitions,
    landing_files,
    parse_date_from_name,
    rows_dates,
)

DAY = date(2024, 1, 2)
HEADER = "transaction_id,timestamp,customer_id,payment_mode,can_size,number_of_cans,amount,payment_status\n"
GOOD = "t1,2024-01-02 10:00:00,C0001,UPI,20L,2,70,Paid\n"
KEYS = {"shop_id": "shop1", "date": DAY.isoformat()}


@pytest.fixture
def config(tmp_path: Path) -> WatershopConfig:
    return init_workspace(tmp_path, shop_id="shop1", timezone="Asia/Kolkata")


def land(config: WatershopConfig, name: str, content: str | bytes, shop: str = "shop1") -> Path:
    path = config.transactions_landing / shop / name if shop else config.transactions_landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def reasons(result) -> dict[int | None, str]:
    return dict(zip(result.rejected["source_line"], result.rejected["reason"]))


def with_shop_settings(config: WatershopConfig, **settings) -> WatershopConfig:
    """Rewrite the workspace config (as a user would edit the YAML) and load it again."""
    path = config.workspace_dir / "watershop.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["shops"][0].update(settings)
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


# --- finding files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("transactions_2024-01-02.csv", DAY),
        ("export-2024-01-02-final.CSV", DAY),
        ("2024-13-45_then_2024-01-02.csv", DAY),
        ("transactions.csv", None),
        ("transactions_20240102.csv", None),
        ("x12024-01-02.csv", None),
    ],
)
def test_parse_date_from_name(name: str, expected: date | None):
    assert parse_date_from_name(Path("some/2023-05-05/dir") / name) == expected


def test_landing_files_skip_hidden_and_temp_files_and_recurse(config: WatershopConfig):
    land(config, "transactions_2024-01-02.csv", HEADER)
    land(config, "2024/01/transactions_2024-01-03.csv", HEADER)
    land(config, ".transactions_2024-01-04.csv.1234.tmp", HEADER)
    land(config, ".hidden.csv", HEADER)
    land(config, "~$transactions_2024-01-05.csv", HEADER)
    land(config, ".git/x.csv", HEADER)
    land(config, "notes.txt", "hi")
    found = [p.relative_to(config.transactions_landing).as_posix() for p in landing_files(config, "shop1")]
    assert found == ["shop1/2024/01/transactions_2024-01-03.csv", "shop1/transactions_2024-01-02.csv"]


def test_files_for_partition_takes_the_day_and_undated_files(config: WatershopConfig):
    land(config, "transactions_2024-01-02.csv", HEADER)
    land(config, "transactions_2024-01-03.csv", HEADER)
    land(config, "all_sales.csv", HEADER)
    names = [p.name for p in files_for_partition(config, "shop1", DAY)]
    assert names == ["all_sales.csv", "transactions_2024-01-02.csv"]


def test_single_shop_workspace_reads_csvs_directly_in_landing(config: WatershopConfig):
    land(config, "transactions_2024-01-02.csv", HEADER + GOOD, shop="")
    result = ingest_partition(config, "shop1", DAY)
    assert result.files == ["transactions_2024-01-02.csv"]
    assert result.valid["transaction_id"].to_list() == ["t1"]


def test_multi_shop_workspace_ignores_csvs_directly_in_landing(tmp_path: Path):
    config = WatershopConfig(shops=[{"id": "a"}, {"id": "b"}], workspace_dir=tmp_path)
    land(config, "transactions_2024-01-02.csv", HEADER, shop="")
    land(config, "transactions_2024-01-02.csv", HEADER, shop="b")
    assert landing_files(config, "a") == []
    assert [p.parent.name for p in landing_files(config, "b")] == ["b"]
    with pytest.raises(KeyError):
        landing_files(config, "c")


# --- clean data ---------------------------------------------------------------------------------


def test_generated_data_round_trips(config: WatershopConfig):
    [path] = write_transaction_csvs(config, DAY, DAY, seed=5)
    csv = pl.read_csv(path, infer_schema=False)
    result = ingest_partition(config, "shop1", DAY)

    assert result.rejected_count == 0 and result.valid_count == csv.height
    assert result.valid.schema == pl.Schema(TRANSACTIONS_SCHEMA)
    got = result.valid.sort("source_line")
    assert got["transaction_id"].to_list() == csv["transaction_id"].to_list()
    assert got["timestamp_local"].dt.strftime("%Y-%m-%d %H:%M:%S").to_list() == csv["timestamp"].to_list()
    assert got["customer_id"].to_list() == csv["customer_id"].to_list()
    for column in ("payment_mode", "can_size", "payment_status"):
        assert got[column].to_list() == csv[column].to_list()
    assert got["number_of_cans"].to_list() == csv["number_of_cans"].cast(pl.Int32).to_list()
    assert got["amount"].to_list() == csv["amount"].cast(pl.Float64).to_list()
    assert got["source_line"].to_list() == list(range(2, csv.height + 2))
    ist = timedelta(hours=5, minutes=30)
    assert (got["timestamp_utc"].dt.replace_time_zone(None) == got["timestamp_local"] - ist).all()
    assert result.valid["timestamp_utc"].is_sorted()

    on_disk = pl.read_parquet(result.valid_path)
    assert_frame_equal(on_disk, result.valid)
    assert result.valid_path == lake.partition_file(config.lake_root, "transactions", **KEYS)
    assert "shop_id" not in on_disk.columns and "date" not in on_disk.columns


def test_values_are_normalised(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", HEADER + " t1 , 2024-01-02T10:00 ,, upi ,20 l, 2.0 , 70.50 , PAID \n")
    row = ingest_partition(config, "shop1", DAY).valid.row(0, named=True)
    assert row["transaction_id"] == "t1" and row["customer_id"] is None
    assert (row["payment_mode"], row["can_size"], row["payment_status"]) == ("UPI", "20L", "Paid")
    assert (row["number_of_cans"], row["amount"]) == (2, 70.5)
    assert row["timestamp_local"] == datetime(2024, 1, 2, 10, 0)


def test_header_matching_ignores_case_spacing_and_order(config: WatershopConfig):
    header = "Payment Status, AMOUNT,Number Of Cans,can size,Payment-Mode,Customer ID,Timestamp,Transaction ID\n"
    land(config, "t_2024-01-02.csv", header + "Paid,35,1,20L,Cash,C1,2024-01-02 09:00:00,t9\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid.select("transaction_id", "customer_id", "amount").row(0) == ("t9", "C1", 35.0)


def test_column_mapping_from_config(config: WatershopConfig):
    config = with_shop_settings(config, pos_columns={"transaction_id": "Bill No", "timestamp": "Bill Time"})
    header = HEADER.replace("transaction_id,timestamp", "bill_no,bill time")
    land(config, "t_2024-01-02.csv", header + "B1,2024-01-02 09:00:00,,Cash,10L,1,20,Paid\n")
    assert ingest_partition(config, "shop1", DAY).valid["transaction_id"].to_list() == ["B1"]


def test_missing_customer_id_column_means_walk_ins(config: WatershopConfig):
    header = HEADER.replace("customer_id,", "")
    land(config, "t_2024-01-02.csv", header + "t1,2024-01-02 09:00:00,Cash,10L,1,20,Paid\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["customer_id"].to_list() == [None]


def test_quoted_fields_and_multiline_records_keep_exact_line_numbers(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", HEADER
         + 't1,2024-01-02 09:00:00,"C1, ""north""",Cash,10L,1,20,Paid\n'
         + 't2,2024-01-02 09:01:00,"two\nlines",Cash,10L,1,20,Paid\n'
         + "\n"
         + "t3,2024-01-02 09:02:00,,Cash,10L,1,20,Paid\r\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid.select("transaction_id", "customer_id", "source_line").rows() == [
        ("t1", 'C1, "north"', 2), ("t3", None, 6)
    ]
    # A line break is a control character: never part of an id (shown escaped in the quarantine).
    assert reasons(result) == {3: "customer_id 'two\\nlines' contains control or invisible characters"}
    assert result.rejected["raw"].item() == 't2,2024-01-02 09:01:00,"two\\nlines",Cash,10L,1,20,Paid'


# --- bad rows -----------------------------------------------------------------------------------


def test_malformed_rows_are_quarantined_and_valid_rows_kept(config: WatershopConfig):
    rows = [
        GOOD,                                                               # 2
        "t2,2024-01-02 10:00:00,C1,UPI,20L,2,70\n",                         # 3 ragged
        "t3,2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid,extra\n",              # 4 ragged
        "t4,02/01/2024 10:00,C1,UPI,20L,2,70,Paid\n",                       # 5 timestamp
        "t5,2024-01-02 25:00:00,C1,UPI,20L,2,70,Paid\n",                    # 6 timestamp
        "t6,2024-01-02 10:00:00,C1,Card,30L,2,70,Maybe\n",                  # 7 unknown values
        "t7,2024-01-02 10:00:00,C1,UPI,20L,two,70,Paid\n",                  # 8 cans
        "t8,2024-01-02 10:00:00,C1,UPI,20L,0,70,Paid\n",                    # 9 cans
        "t9,2024-01-02 10:00:00,C1,UPI,20L,2.5,70,Paid\n",                  # 10 cans
        "t10,2024-01-02 10:00:00,C1,UPI,20L,1001,70,Paid\n",                # 11 cans
        "t11,2024-01-02 10:00:00,C1,UPI,20L,2,abc,Paid\n",                  # 12 amount
        "t12,2024-01-02 10:00:00,C1,UPI,20L,2,-70,Paid\n",                  # 13 amount
        ",2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\n",                      # 14 id
        "t13,2024-01-02 11:00:00,,Cash,10L,1,20,Unpaid\n",                  # 15 good
        "t14,,,,20L,,,Paid\n",                                              # 16 empty fields
    ]
    land(config, "t_2024-01-02.csv", HEADER + "".join(rows))
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["transaction_id"].to_list() == ["t1", "t13"]
    got = reasons(result)
    assert got[3] == "expected 8 fields, got 7" and got[4] == "expected 8 fields, got 9"
    assert got[5].startswith("unparseable timestamp '02/01/2024 10:00'")
    assert got[6].startswith("unparseable timestamp '2024-01-02 25:00:00'")
    assert got[7] == "unknown payment_mode 'Card'; unknown can_size '30L'; unknown payment_status 'Maybe'"
    for line, value in ((8, "two"), (9, "0"), (10, "2.5"), (11, "1001")):
        assert got[line] == f"number_of_cans '{value}' is not a whole number from 1 to 1000"
    assert got[12] == "amount 'abc' is not a number" and got[13] == "amount '-70' is negative"
    assert got[14] == "empty transaction_id"
    assert got[16] == "empty timestamp; empty payment_mode; empty number_of_cans; empty amount"
    assert len(got) == 13
    assert result.rejected.filter(pl.col("source_line") == 7)["raw"].item() == rows[5].rstrip("\n")
    assert result.rejected.schema == pl.Schema(QUARANTINE_SCHEMA)


def test_numbers_are_bounded_to_what_the_marts_hold_and_to_the_price(config: WatershopConfig):
    """Prices are 10L: 20, 20L: 35 (init's template): an amount above 10 x price x cans is a typo."""
    amounts = {
        2: ("1e300", "amount '1e300' is above the largest sale 10000000"),
        3: ("1e16", "amount '1e16' is above the largest sale 10000000"),
        4: ("1e400", "amount '1e400' is not a number"),
        5: ("-inf", "amount '-inf' is not a number"),
        6: ("NaN", "amount 'NaN' is not a number"),
        7: ("701", "amount '701' is more than 10 x price x cans (10 x 35.0 x 2)"),
        8: ("-0.0", None),
        9: ("700", None),
        10: ("0", None),
    }
    lines = [f"t{line},2024-01-02 10:00:00,C1,UPI,20L,2,{amount},Paid\n" for line, (amount, _) in amounts.items()]
    land(config, "t_2024-01-02.csv", HEADER + "".join(lines) + "c1,2024-01-02 10:00:00,C1,UPI,20L,nan,70,Paid\n")
    result = ingest_partition(config, "shop1", DAY)
    expected = {line: reason for line, (_, reason) in amounts.items() if reason}
    assert reasons(result) == {**expected, 11: "number_of_cans 'nan' is not a whole number from 1 to 1000"}
    valid = dict(zip(result.valid["transaction_id"], result.valid["amount"]))
    assert valid == {"t8": 0.0, "t9": 700.0, "t10": 0.0}
    assert str(valid["t8"]) == "0.0"  # negative zero is stored as zero


def test_without_a_price_only_the_absolute_bound_applies(config: WatershopConfig):
    config = with_shop_settings(config, prices={})
    land(config, "t_2024-01-02.csv", HEADER + GOOD.replace(",70,", ",9999999.99,")
         + GOOD.replace("t1", "t2").replace(",70,", ",10000000.01,"))
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["amount"].to_list() == [9999999.99]
    assert reasons(result) == {3: "amount '10000000.01' is above the largest sale 10000000"}


def test_control_and_invisible_characters_never_reach_the_lake(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", HEADER
         + "t\x001,2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\n"
         + "t2,2024-01-02 10:00:00,C\u202e1,UPI,20L,2,70,Paid\n"
         + "t3,2024-01-02 10:00:00,C\u200b1,UPI,20L,2,70,Paid\n"
         + "t4,2024-01-02 10:00:00,C1,UP\x00I,20L,2,70,Paid\n"
         + "t5,2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\x0b\n"  # whitespace around a value is trimmed
         + "t" + "9" * 200 + ",2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["transaction_id"].to_list() == ["t5"]
    got = reasons(result)
    assert got[2] == "transaction_id 't\\x001' contains control or invisible characters"
    assert got[3] == "customer_id 'C\\u202e1' contains control or invisible characters"
    assert got[4] == "customer_id 'C\\u200b1' contains control or invisible characters"
    assert got[5] == "unknown payment_mode 'UP\\x00I'"
    assert got[7] == f"transaction_id 't{'9' * 59}…' is longer than 128 characters"
    for dataset in ("transactions", "transactions_quarantine"):
        text = lake.read_partition(config.lake_root, dataset, **KEYS).select(pl.col(pl.Utf8)).rows()
        assert not any(ch in value for row in text for value in row if value for ch in "\x00\u202e\u200b")
    assert result.rejected.filter(pl.col("source_line") == 2)["raw"].item().startswith("t\\x001,")


def test_utf16_export_is_decoded(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", (HEADER + GOOD).encode("utf-16"))
    assert ingest_partition(config, "shop1", DAY).valid["transaction_id"].to_list() == ["t1"]


def test_file_name_with_a_control_character_is_quarantined_whole(config: WatershopConfig):
    land(config, "bad\nname_2024-01-02.csv", HEADER + GOOD)
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid_count == 0
    assert result.rejected.select("source_file", "reason").rows() == [
        ("shop1/bad\\nname_2024-01-02.csv", "file name contains control or invisible characters; rename the file")
    ]


def test_unterminated_quote_costs_one_line(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", HEADER + GOOD
         + 't2,"2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\n'
         + "t3,2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\n"
         + "t4,2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["transaction_id"].to_list() == ["t1", "t3", "t4"]
    assert reasons(result) == {3: "unterminated quoted field (expected 8 fields)"}


def test_invalid_utf8_line_is_quarantined_alone(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", (HEADER + GOOD).encode() + b"t2,2024-01-02 10:00:00,C\xff,UPI,20L,2,70,Paid\n"
         + b"t3,2024-01-02 10:00:00,C1,UPI,20L,2,70,Paid\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["transaction_id"].to_list() == ["t1", "t3"]
    assert reasons(result) == {3: "line is not valid UTF-8 text"}
    assert result.rejected["raw"].item() == "t2,2024-01-02 10:00:00,C\\xff,UPI,20L,2,70,Paid"


def test_duplicate_ids_that_disagree_are_all_quarantined_whatever_the_file_order(config: WatershopConfig):
    land(config, "a_2024-01-02.csv", HEADER + GOOD + GOOD.replace("10:00", "11:00"))
    land(config, "b_2024-01-02.csv", HEADER + GOOD.replace("10:00", "12:00"))
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid_count == 0
    reason = ("conflicting duplicate transaction_id 't1': 3 rows disagree (shop1/a_2024-01-02.csv:2, "
              "shop1/a_2024-01-02.csv:3, shop1/b_2024-01-02.csv:2); none landed")
    assert result.rejected.select("source_file", "source_line", "reason").rows() == [
        ("shop1/a_2024-01-02.csv", 2, reason), ("shop1/a_2024-01-02.csv", 3, reason),
        ("shop1/b_2024-01-02.csv", 2, reason),
    ]


def test_identical_duplicates_land_once_and_the_copies_are_quarantined(config: WatershopConfig):
    # The same sale exported twice (once with an explicit offset, once with '20 l' and 70.00) is one sale.
    land(config, "b_2024-01-02.csv", HEADER + GOOD)
    land(config, "a_2024-01-02.csv", HEADER + "t1,2024-01-02T04:30:00Z,C0001,upi,20 l,2.0,70.00,PAID\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid.select("transaction_id", "source_file", "amount").rows() == [
        ("t1", "shop1/a_2024-01-02.csv", 70.0)
    ]
    assert result.rejected.select("source_file", "reason").rows() == [
        ("shop1/b_2024-01-02.csv", "exact duplicate of transaction_id 't1' landed from shop1/a_2024-01-02.csv:2")
    ]


def test_duplicate_outcome_does_not_depend_on_file_names(tmp_path: Path):
    """The same rows under swapped file names land the same sales (only lineage columns may differ)."""
    rows = [GOOD, GOOD, GOOD.replace("t1", "t2"), GOOD.replace("t1", "t2").replace(",2,70,", ",1,35,"),
            GOOD.replace("t1", "t3")]
    outcomes = []
    for names in (("a", "b"), ("b", "a")):
        config = init_workspace(tmp_path / "".join(names), shop_id="shop1", timezone="Asia/Kolkata")
        land(config, f"{names[0]}_2024-01-02.csv", HEADER + "".join(rows[:3]))
        land(config, f"{names[1]}_2024-01-02.csv", HEADER + "".join(rows[3:]))
        result = ingest_partition(config, "shop1", DAY)
        outcomes.append((result.valid.drop("source_file", "source_line"), result.rejected_count))
    assert_frame_equal(outcomes[0][0], outcomes[1][0])
    assert outcomes[0][0]["transaction_id"].to_list() == ["t1", "t3"] and outcomes[0][1] == outcomes[1][1] == 3


def test_a_rejected_row_does_not_block_a_later_valid_row_with_its_id(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", HEADER + GOOD.replace("UPI", "Card") + GOOD)
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["source_line"].to_list() == [3]
    assert reasons(result) == {2: "unknown payment_mode 'Card'"}


def test_wrong_day_row_in_a_dated_file_names_both_dates(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", HEADER + GOOD + "t2,2024-01-03 10:00:00,C1,UPI,20L,2,70,Paid\n")
    result = ingest_partition(config, "shop1", DAY)
    assert reasons(result) == {3: "timestamp '2024-01-03 10:00:00' is on 2024-01-03 but the file is dated 2024-01-02"}
    assert ingest_partition(config, "shop1", date(2024, 1, 3)).valid_count == 0


def test_explicit_offsets_are_converted_to_local_time(config: WatershopConfig):
    land(config, "t_2024-01-02.csv", HEADER
         + "t1,2024-01-02T04:30:00Z,,UPI,20L,2,70,Paid\n"
         + "t2,2024-01-02 10:00:00+05:30,,UPI,20L,2,70,Paid\n"
         + "t3,2024-01-01T20:00:00.250-0000,,UPI,20L,2,70,Paid\n"
         + "t4,2024-01-02T20:00:00+00:00,,UPI,20L,2,70,Paid\n")
    result = ingest_partition(config, "shop1", DAY)
    local = dict(zip(result.valid["transaction_id"], result.valid["timestamp_local"]))
    ten = datetime(2024, 1, 2, 10)
    assert local == {"t1": ten, "t2": ten, "t3": datetime(2024, 1, 2, 1, 30, 0, 250000)}
    assert reasons(result) == {
        5: "timestamp '2024-01-02T20:00:00+00:00' is on 2024-01-03 but the file is dated 2024-01-02"
    }


def test_nonexistent_local_time_is_rejected(tmp_path: Path):
    config = init_workspace(tmp_path, shop_id="ny", timezone="America/New_York")
    land(config, "t_2024-03-10.csv", HEADER
         + "t1,2024-03-10 02:30:00,,UPI,20L,2,70,Paid\n"
         + "t2,2024-03-10 03:30:00,,UPI,20L,2,70,Paid\n", shop="ny")
    result = ingest_partition(config, "ny", date(2024, 3, 10))
    assert result.valid["transaction_id"].to_list() == ["t2"]
    assert reasons(result) == {2: "nonexistent local time '2024-03-10 02:30:00' in America/New_York (DST gap)"}


# --- bad files ----------------------------------------------------------------------------------


def test_garbage_empty_and_header_only_files_do_not_block_others(config: WatershopConfig):
    land(config, "a_2024-01-02.csv", random.Random(1).randbytes(5000))
    land(config, "b_2024-01-02.csv", b"")
    land(config, "c_2024-01-02.csv", HEADER)
    land(config, "d_2024-01-02.csv", HEADER + GOOD)
    land(config, "e_2024-01-02.csv", "id,when\n1,2\n")
    result = ingest_partition(config, "shop1", DAY)
    assert result.valid["transaction_id"].to_list() == ["t1"]
    rejected = dict(zip(result.rejected["source_file"], result.rejected["reason"]))
    assert rejected["shop1/a_2024-01-02.csv"] == "not a CSV text file (binary data or not UTF-8)"
    assert rejected["shop1/b_2024-01-02.csv"] == "empty file"
    assert rejected["shop1/e_2024-01-02.csv"] == (
        "missing required column(s) 'transaction_id', 'timestamp', 'payment_mode', 'can_size', "
        "'number_of_cans', 'amount', 'payment_status'; header has ['id', 'when']"
    )
    assert len(rejected) == 3 and result.rejected["source_line"].null_count() == 3
    assert result.files == [f"shop1/{c}_2024-01-02.csv" for c in "abcde"]


# --- undated files ------------------------------------------------------------------------------


def test_undated_file_rows_go_to_their_own_day_and_undatable_lines_to_the_file_date(config: WatershopConfig):
    path = land(config, "all_sales.csv", HEADER + GOOD
                + "t2,2024-01-03 10:00:00,,UPI,20L,2,70,Paid\n"
                + "t3,2024-01-03 11:00:00,,Card,20L,2,70,Paid\n"
                + "t4,yesterday,,UPI,20L,2,70,Paid\n"
                + "t5,2024-01-03 12:00:00,,UPI\n")
    modified = datetime(2024, 1, 5, 12, 0, tzinfo=ZoneInfo("Asia/Kolkata")).timestamp()
    os.utime(path, (modified, modified))
    results = ingest_partitions(config, "shop1", [DAY + timedelta(days=offset) for offset in range(4)])
    assert results[DAY].valid["transaction_id"].to_list() == ["t1"] and results[DAY].rejected_count == 0
    assert results[date(2024, 1, 3)].valid["transaction_id"].to_list() == ["t2"]
    assert reasons(results[date(2024, 1, 3)]) == {4: "unknown payment_mode 'Card'"}
    assert results[date(2024, 1, 4)].valid_count == results[date(2024, 1, 4)].rejected_count == 0
    assert set(reasons(results[date(2024, 1, 5)])) == {5, 6}
    assert all(result.files == ["shop1/all_sales.csv"] for result in results.values())


def test_undated_rows_that_no_partition_would_run_go_to_the_files_day(config: WatershopConfig):
    """Rows later than the file was written (a date in the future) or before partitions_start would sit in a
    partition that never runs: they are quarantined on the file's home day instead, with the reason."""
    path = land(config, "all_sales.csv", HEADER + GOOD
                + "t2,2024-01-05 12:30:00,,UPI,20L,2,70,Paid\n"   # 30 min after the write: clock skew, kept
                + "t3,2024-01-05 14:00:00,,UPI,20L,2,70,Paid\n"   # 2 h after: not a sale yet
                + "t4,2099-01-01 10:00:00,,UPI,20L,2,70,Paid\n"
                + "t5,2023-12-31 10:00:00,,UPI,20L,2,70,Paid\n")
    written = datetime(2024, 1, 5, 12, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    os.utime(path, (written.timestamp(), written.timestamp()))
    days = rows_dates(path, config.shop("shop1"), config.partitions_start)
    assert days == {DAY, date(2024, 1, 5)}
    results = ingest_partitions(config, "shop1", days)
    assert results[DAY].valid["transaction_id"].to_list() == ["t1"]
    assert results[date(2024, 1, 5)].valid["transaction_id"].to_list() == ["t2"]
    assert reasons(results[date(2024, 1, 5)]) == {
        4: "timestamp '2024-01-05 14:00:00' is after the file was last written (2024-01-05 06:30:00 UTC): "
           "a future date or a wrong clock",
        5: "timestamp '2099-01-01 10:00:00' is after the file was last written (2024-01-05 06:30:00 UTC): "
           "a future date or a wrong clock",
        6: "timestamp '2023-12-31 10:00:00' is before partitions_start 2024-01-01: no partition covers it",
    }


def test_undated_file_with_a_clock_in_the_future_or_at_1970_still_reports_every_row(config: WatershopConfig):
    today = datetime.now(ZoneInfo("Asia/Kolkata")).date()
    path = land(config, "all_sales.csv", HEADER + "t1,2099-01-01 10:00:00,,UPI,20L,2,70,Paid\n" + "t2,soon\n")
    future = datetime(2100, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp()
    os.utime(path, (future, future))
    shop = config.shop("shop1")
    assert rows_dates(path, shop, config.partitions_start) == {today}
    result = ingest_partition(config, "shop1", today)
    assert result.valid_count == 0 and set(reasons(result)) == {2, 3}
    assert reasons(result)[2].startswith("timestamp '2099-01-01 10:00:00' is after the file was last written")

    os.utime(path, (0, 0))  # 1970: before partitions_start, whose partition does run
    assert rows_dates(path, shop, config.partitions_start) == {config.partitions_start}
    assert set(reasons(ingest_partition(config, "shop1", config.partitions_start))) == {2, 3}


# --- idempotency and the batch path -------------------------------------------------------------


def read_both(config: WatershopConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (
        lake.read_partition(config.lake_root, "transactions", **KEYS),
        lake.read_partition(config.lake_root, "transactions_quarantine", **KEYS),
    )


def file_bytes(config: WatershopConfig) -> list[bytes]:
    datasets = ("transactions", "transactions_quarantine")
    return [lake.partition_file(config.lake_root, dataset, **KEYS).read_bytes() for dataset in datasets]


def test_rerun_is_idempotent_and_replaces_the_partition(config: WatershopConfig):
    write_transaction_csvs(config, DAY, DAY, seed=2)
    land(config, "extra_2024-01-02.csv", HEADER + "x1,2024-01-02 10:00:00,,UPI,20L,oops,70,Paid\n")
    ingest_partition(config, "shop1", DAY)
    first = file_bytes(config)
    ingest_partition(config, "shop1", DAY)
    assert file_bytes(config) == first
    assert read_both(config)[1]["reason"].to_list() == ["number_of_cans 'oops' is not a whole number from 1 to 1000"]

    land(config, "transactions_2024-01-02.csv", HEADER + GOOD)
    (config.transactions_landing / "shop1" / "extra_2024-01-02.csv").unlink()
    ingest_partition(config, "shop1", DAY)
    valid, rejected = read_both(config)
    assert valid["transaction_id"].to_list() == ["t1"] and rejected.height == 0
    # the quarantine is sparse: its old rows are cleared by removing the file, not by an empty one
    assert not lake.partition_file(config.lake_root, "transactions_quarantine", **KEYS).exists()
    assert valid.schema == pl.Schema(TRANSACTIONS_SCHEMA) and rejected.schema == pl.Schema(QUARANTINE_SCHEMA)


def test_a_day_without_files_gets_an_empty_partition_and_no_quarantine_file(config: WatershopConfig):
    result = ingest_partition(config, "shop1", DAY)
    assert result.files == [] and result.valid_path.exists() and not result.rejected_path.exists()
    valid, rejected = read_both(config)
    assert valid.height == rejected.height == 0
    assert valid.schema == pl.Schema(TRANSACTIONS_SCHEMA) and rejected.schema == pl.Schema(QUARANTINE_SCHEMA)


def test_batch_equals_one_partition_at_a_time(config: WatershopConfig):
    days = [DAY + timedelta(days=offset) for offset in range(3)]
    write_transaction_csvs(config, days[0], days[-1], seed=4)
    land(config, "undated.csv", HEADER + GOOD + "t2,2024-01-03 10:00:00,,Card,20L,2,70,Paid\n")
    batch = ingest_partitions(config, "shop1", days)
    for day in days:
        single = ingest_partition(config, "shop1", day)
        assert_frame_equal(batch[day].valid, single.valid)
        assert_frame_equal(batch[day].rejected, single.rejected)
        assert batch[day].files == single.files


def test_rows_dates_match_where_ingestion_puts_the_rows(config: WatershopConfig):
    dated = land(config, "t_2024-01-02.csv", HEADER + "t1,2024-01-09 10:00:00,,UPI,20L,2,70,Paid\n")
    undated = land(config, "all.csv", HEADER + GOOD + "t2,2024-01-03T23:00:00Z,,Card,20L,2,70,Paid\n")
    shop = config.shop("shop1")
    assert rows_dates(dated, shop) == {DAY}
    assert rows_dates(undated, shop) == {DAY, date(2024, 1, 4)}

    land(config, "all.csv", HEADER + GOOD + "t3,soon,,UPI,20L,2,70,Paid\n")
    modified = datetime(2024, 1, 7, 12, 0, tzinfo=ZoneInfo("Asia/Kolkata")).timestamp()
    os.utime(undated, (modified, modified))
    assert rows_dates(undated, shop) == {DAY, date(2024, 1, 7)}


PLAIN_CASES = {
    "clean.csv": HEADER + GOOD + "t2,2024-01-02 11:00:00,,Cash,10L,1,20,Unpaid\n",
    "crlf_and_blanks.csv": "\r\n" + HEADER.replace("\n", "\r\n") + GOOD.replace("\n", "\r\n") + "\r\n   \r\n"
    + "t3,2024-01-02 12:00:00,C2,UPI,20L,1,35,Paid",
    "ragged.csv": HEADER + "t4,2024-01-02 10:00:00,C1,UPI,20L,2,70\n" + ",,,,,,,,,\n" + "lonely\n" + " , \n" + GOOD,
    "reordered_unicode.csv": "Amount,Payment Status,Transaction ID,Timestamp,Payment Mode,Can Size,Number of Cans\n"
    + "70,Paid,t5,2024-01-02 10:00:00,UPI,20L,2\n" + "70,Paid,tö6,2024-01-02 10:00:00,UPI,20L,2\xa0\n",
    "bad_values.csv": HEADER + "t7,2024-01-02 25:00:00,C1,UPI,20L,2,70,Paid\n" + "t8,2024-01-02 10:00:00,C1,UPI,20L,0,-1,Paid\n",
}


def test_plain_files_split_natively_land_exactly_what_the_csv_module_lands(config: WatershopConfig, monkeypatch):
    """Quote-free files are split on commas in polars; the csv module's path must give the same rows."""
    from watershop_dagster.pos import ingest

    for name, content in PLAIN_CASES.items():
        assert ingest._is_plain(content), name
        land(config, name.replace(".csv", "_2024-01-02.csv"), content)
    land(config, "quoted_2024-01-02.csv", HEADER + '"t9","2024-01-02 10:00:00","C1","UPI","20L","2","70","Paid"\n')
    land(config, "undated.csv", HEADER + "t10,2024-01-03 10:00:00,,UPI,20L,2,70,Paid\nbroken\n")
    days = [DAY, DAY + timedelta(days=1)]
    native = ingest_partitions(config, "shop1", days)
    monkeypatch.setattr(ingest, "_is_plain", lambda text: False)
    python = ingest_partitions(config, "shop1", days)
    for day in days:
        assert_frame_equal(native[day].valid, python[day].valid)
        assert_frame_equal(native[day].rejected, python[day].rejected)
    assert sorted(native[DAY].valid["transaction_id"]) == ["t1", "t2", "t3", "t5", "t9", "tö6"]
    ragged = native[DAY].rejected.filter(pl.col("source_file").str.contains("ragged"))
    assert ragged["reason"].to_list()[:4] == [f"expected 8 fields, got {n}" for n in (7, 10, 1, 2)]
    assert native[DAY].rejected.height == 8
    assert not any(ingest._is_plain(text) for text in ('a,"b"\n', "a,b\rc,d\n", "a,b\x00\n", "a,\udcff\n"))


_FIELDS = ["t1", "t2", "2024-01-02 10:00:00", "2024-01-03 23:59:59", "", " ", "C1", "UPI", "Cash", "20L", "10L",
           "2", "0", "70", "20.0", "Paid", "Unpaid", "é", "\u00a0", "-1"]
_PLAIN_LINE = st.one_of(
    st.lists(st.sampled_from(_FIELDS), min_size=8, max_size=8).map(",".join),
    st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=10).map(",".join),  # ragged
    st.sampled_from(["", "  ", " , "]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(st.sampled_from(["a_2024-01-02.csv", "b_2024-01-02.csv", "undated.csv"]),
                                st.lists(_PLAIN_LINE, max_size=8), st.sampled_from(["\n", "\r\n"]), st.booleans()),
                      min_size=1, max_size=3))
def test_any_plain_files_land_the_same_split_natively_or_by_the_csv_module(tmp_path_factory, monkeypatch, files):
    from watershop_dagster.pos import ingest

    config = init_workspace(tmp_path_factory.mktemp("ws"), shop_id="shop1", timezone="Asia/Kolkata")
    for name, lines, eol, final_eol in files:
        text = eol.join([HEADER.rstrip("\n"), *lines]) + (eol if final_eol else "")
        land(config, name, text.encode())
    days = [DAY, DAY + timedelta(days=1)]
    native = ingest_partitions(config, "shop1", days)
    with monkeypatch.context() as patch:
        patch.setattr(ingest, "_is_plain", lambda text: False)
        python = ingest_partitions(config, "shop1", days)
    for day in days:
        assert_frame_equal(native[day].valid, python[day].valid)
        assert_frame_equal(native[day].rejected, python[day].rejected)
