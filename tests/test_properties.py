"""Property-based tests (hypothesis): the POS CSV parser and validators, the footage path parsers and the
time arithmetic (local day boundaries, DST in zones that have it)."""

from __future__ import annotations

import csv
import io
import math
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from watershop_dagster.config import CAN_SIZES, PAYMENT_MODES, PAYMENT_STATUSES, POS_COLUMNS, init_workspace
from watershop_dagster.pos.ingest import (
    AMOUNT_PRICE_FACTOR,
    MAX_AMOUNT,
    MAX_CANS,
    ingest_partitions,
    parse_date_from_name,
    rows_dates,
)
from watershop_dagster.quality import local_day_bounds
from watershop_dagster.vision.footage import (
    local_day_bounds_utc,
    local_to_utc,
    parse_frigate_path,
    parse_plain_path,
)

ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata", "UTC"]
PRICES = {"10L": 20.0, "20L": 35.0}  # init_workspace's template
DAY = date(2024, 1, 2)
UNPRINTABLE = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set("\u200b\u200e\u202e\u2066\ufeff")
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2037, 12, 31))
zones = st.sampled_from(ZONES)
clocks = st.times()


# --- time arithmetic --------------------------------------------------------------------------------


@given(day=days, zone=zones)
def test_local_days_tile_the_timeline_and_last_23_to_25_hours(day, zone):
    tz = ZoneInfo(zone)
    start, end = local_day_bounds_utc(day, tz)
    following_start, _ = local_day_bounds_utc(day + timedelta(days=1), tz)
    assert end == following_start  # no gap, no overlap between consecutive days
    assert timedelta(hours=23) <= end - start <= timedelta(hours=25)
    assert start.astimezone(tz).date() == day and (end - timedelta(microseconds=1)).astimezone(tz).date() == day


@given(day=days, zone=zones, offset_us=st.integers(0, 25 * 3600 * 10**6 - 1))
def test_every_instant_of_a_local_day_maps_back_to_that_day(day, zone, offset_us):
    tz = ZoneInfo(zone)
    start, end = local_day_bounds_utc(day, tz)
    instant = start + timedelta(microseconds=offset_us)
    assume(instant < end)
    assert instant.astimezone(tz).date() == day
    low, high = local_day_bounds(day)  # the naive bounds the quality suite checks stored local times with
    assert low <= instant.astimezone(tz).replace(tzinfo=None) <= high


@given(day=days, clock=clocks, zone=zones)
@example(day=date(2024, 3, 10), clock=time(2, 30), zone="America/New_York")  # spring-forward gap
@example(day=date(2024, 11, 3), clock=time(1, 30), zone="America/New_York")  # fall-back: twice
@example(day=date(2024, 10, 6), clock=time(2, 15), zone="Australia/Lord_Howe")  # a 30-minute DST gap
def test_local_to_utc_round_trips_or_names_the_gap(day, clock, zone):
    tz = ZoneInfo(zone)
    naive = datetime.combine(day, clock)
    try:
        utc = local_to_utc(day, clock, tz)
    except ValueError as exc:
        assert "does not exist" in str(exc)
        assert naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive
        return
    assert utc.tzinfo is UTC and utc.astimezone(tz).replace(tzinfo=None) == naive
    assert utc <= naive.replace(tzinfo=tz, fold=1).astimezone(UTC)  # ambiguous: the first occurrence


# --- footage path parsers ---------------------------------------------------------------------------

cameras = st.text(alphabet=st.characters(categories=("L", "N"), codec="ascii"), min_size=1, max_size=12) | st.sampled_from(
    ["counter", "door-1", "cam_2"])


@given(camera=cameras, day=days, clock=clocks.map(lambda t: t.replace(microsecond=0)), zone=zones)
def test_plain_path_round_trips(camera, day, clock, zone):
    tz = ZoneInfo(zone)
    rel = Path(camera) / day.isoformat() / f"{clock:%H-%M-%S}.mp4"
    try:
        expected = local_to_utc(day, clock, tz)
    except ValueError:
        try:
            parse_plain_path(rel, tz)
        except ValueError as exc:
            assert "does not exist" in str(exc)
            return
        raise AssertionError(f"{rel} is in a DST gap but parsed")
    assert parse_plain_path(rel, tz) == (camera, expected)


@given(camera=cameras, moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)))
def test_frigate_path_round_trips_in_utc(camera, moment):
    moment = moment.replace(microsecond=0)
    rel = Path(moment.date().isoformat()) / f"{moment:%H}" / camera / f"{moment:%M.%S}.mp4"
    assert parse_frigate_path(rel) == (camera, moment.replace(tzinfo=UTC))


path_parts = st.text(alphabet=st.characters(codec="ascii", exclude_characters="/\x00") | st.sampled_from("٠١٢-._"),
                     min_size=1, max_size=14)


@given(parts=st.lists(path_parts, min_size=1, max_size=5), zone=zones)
@example(parts=["cam", "2024-02-30", "10-00-00.mp4"], zone="UTC")
@example(parts=["cam", "2024-01-02", "24-00-00.mp4"], zone="UTC")
@example(parts=["2024-01-02", "24", "cam", "00.00.mp4"], zone="UTC")
@example(parts=["2024-01-02", "23", "cam", "60.00.mp4"], zone="UTC")
def test_path_parsers_accept_or_raise_value_error_only(parts, zone):
    """Any path: a (camera, aware UTC time) or a ValueError with a reason; nothing else escapes."""
    rel = Path(*parts)
    for parse in (lambda: parse_plain_path(rel, ZoneInfo(zone)), lambda: parse_frigate_path(rel)):
        try:
            camera, start = parse()
        except ValueError as exc:
            assert str(exc)
        else:
            assert camera in parts and start.tzinfo is not None


@given(name=st.text(max_size=40))
@example(name="sales_2024-02-30_2024-03-01.csv")
def test_date_in_a_file_name_is_a_real_date_or_none(name):
    found = parse_date_from_name(name.replace("/", "_"))
    assert found is None or found.isoformat() in name.replace("/", "_")


# --- the CSV parser and validators ------------------------------------------------------------------

text_fields = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
amounts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=2e4).map(lambda v: f"{v:.2f}"),
    st.sampled_from(["1e300", "-0", "-0.0", "1e16", "NaN", "inf", "-inf", "1,000", "", " 70 ", "0x10"]),
)
cans = st.one_of(st.integers(-5, 1100).map(str), st.sampled_from(["1e2", "2.0", "2.5", "nan", "inf", "", "1e12"]))
timestamps = st.one_of(
    st.times().map(lambda t: f"{DAY} {t:%H:%M:%S}"),
    st.sampled_from([f"{DAY}T04:30:00Z", f"{DAY} 10:00:00+05:30", "2024-01-03 10:00:00", "yesterday", "",
                     f"{DAY} 25:00:00", "2099-01-01 10:00:00"]),
)
ids = st.one_of(st.from_regex(r"[A-Za-z0-9-]{1,10}", fullmatch=True), text_fields)


@st.composite
def pos_rows(draw) -> dict[str, str]:
    return {
        "transaction_id": draw(ids),
        "timestamp": draw(timestamps),
        "customer_id": draw(st.one_of(st.just(""), ids)),
        "payment_mode": draw(st.sampled_from([*PAYMENT_MODES, "upi", "Card", ""]) | text_fields),
        "can_size": draw(st.sampled_from([*CAN_SIZES, "20 l", "30L"])),
        "number_of_cans": draw(cans),
        "amount": draw(amounts),
        "payment_status": draw(st.sampled_from([*PAYMENT_STATUSES, "PAID", "Maybe"])),
    }


def write_csv(rows: list[dict[str, str]], header: list[str], line_ending: str,
              quoting: int = csv.QUOTE_MINIMAL) -> tuple[str, list[int]]:
    """The CSV text and the line number each record starts on. (Python's writer leaves a lone CR
    unquoted with a LF terminator, which every reader takes for a line break: quote all then.)"""
    if any("\r" in value for row in rows for value in row.values()):
        quoting = csv.QUOTE_ALL
    out, starts, line = io.StringIO(), [], 2
    writer = csv.writer(out, lineterminator=line_ending, quoting=quoting)
    writer.writerow(header)
    for row in rows:
        starts.append(line)
        before = out.tell()
        writer.writerow([row[column] for column in header])
        record = out.getvalue()[before:]
        line += len(io.StringIO(record, newline="").readlines())
    return out.getvalue(), starts


def ingest_text(text: str, name: str = "pos_2024-01-02.csv") -> dict[date, object]:
    with tempfile.TemporaryDirectory() as folder:
        config = init_workspace(folder, shop_id="shop1", timezone="Asia/Kolkata")
        path = config.transactions_landing / "shop1" / name
        path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        day_set = rows_dates(path, config.shop("shop1"), config.partitions_start)
        return ingest_partitions(config, "shop1", day_set)


def expected_reason_free(row: dict[str, str]) -> bool:
    """An independent statement of the numeric rules: whether the row's numbers are acceptable."""
    texts = row["amount"].strip(), row["number_of_cans"].strip()  # values are trimmed
    if any("_" in text or "," in text for text in texts):  # Python's float reads 1_000; a CSV value is not that
        return False
    try:
        amount, count = map(float, texts)
    except ValueError:
        return False
    if not (math.isfinite(amount) and math.isfinite(count)):
        return False
    size = {"20 l": "20L"}.get(row["can_size"], row["can_size"])
    return (count == int(count) and 1 <= count <= MAX_CANS and 0 <= amount <= MAX_AMOUNT
            and (size not in PRICES or amount <= AMOUNT_PRICE_FACTOR * PRICES[size] * count))


@PROFILE
@given(rows=st.lists(pos_rows(), max_size=25), order=st.permutations(list(POS_COLUMNS)),
       line_ending=st.sampled_from(["\n", "\r\n"]), quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
def test_every_record_lands_or_is_quarantined_exactly_once(rows, order, line_ending, quoting):
    header = list(order)
    text, starts = write_csv(rows, header, line_ending, quoting)
    results = ingest_text(text)
    valid = pl.concat([r.valid for r in results.values()])
    rejected = pl.concat([r.rejected for r in results.values()])
    lines = valid["source_line"].to_list() + rejected["source_line"].to_list()
    assert sorted(lines) == starts  # rows in = rows landed + rows quarantined, each once
    assert rejected["reason"].str.len_chars().min() is None or rejected["reason"].str.len_chars().min() > 0
    for column in ("transaction_id", "customer_id"):
        assert not any(ch in UNPRINTABLE for value in valid[column].drop_nulls() for ch in value)
    assert valid["amount"].is_between(0, MAX_AMOUNT).all() and valid["number_of_cans"].is_between(1, MAX_CANS).all()
    assert not any(ch in UNPRINTABLE - {"\n"} for text_ in rejected["reason"] for ch in text_)
    by_line = dict(zip(starts, rows))
    for line in valid["source_line"]:
        assert expected_reason_free(by_line[line]), by_line[line]


@PROFILE
@given(amount=st.floats(allow_nan=True, allow_infinity=True), count=st.integers(-2, MAX_CANS + 2),
       size=st.sampled_from(CAN_SIZES))
def test_amount_rule_matches_its_statement(amount, count, size):
    row = {"transaction_id": "t1", "timestamp": f"{DAY} 10:00:00", "customer_id": "", "payment_mode": "UPI",
           "can_size": size, "number_of_cans": str(count), "amount": repr(amount), "payment_status": "Paid"}
    text, _ = write_csv([row], list(POS_COLUMNS), "\n")
    result = ingest_text(text)[DAY]
    assert (result.valid_count == 1) == expected_reason_free(row)
    assert result.valid_count + result.rejected_count == 1


@PROFILE
@given(data=st.binary(max_size=600), prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]))
def test_arbitrary_bytes_never_crash_and_are_accounted_for(data, prefix):
    header = ",".join(POS_COLUMNS).encode() + b"\n"
    results = ingest_text(prefix + header + data)
    outputs = sum(r.valid_count + r.rejected_count for r in results.values())
    non_blank = [line for line in data.splitlines() if line.strip()]
    assert outputs >= (1 if non_blank else 0) or prefix == b"\xff\xfe"


@PROFILE
@given(rows=st.lists(pos_rows(), min_size=1, max_size=12), split=st.integers(0, 12), seed=st.randoms())
def test_landed_sales_do_not_depend_on_file_names_or_order(rows, split, seed):
    """The same records split over two files land the same sales whichever file sorts first."""
    rows = [{**row, "transaction_id": seed.choice(["t1", "t2", "t3"])} for row in rows]
    outcomes = []
    for first, second in (("a", "b"), ("b", "a")):
        with tempfile.TemporaryDirectory() as folder:
            config = init_workspace(folder, shop_id="shop1", timezone="Asia/Kolkata")
            for name, part in ((first, rows[:split]), (second, rows[split:])):
                text, _ = write_csv(part, list(POS_COLUMNS), "\n")
                (config.transactions_landing / "shop1" / f"{name}_2024-01-02.csv").write_text(text)
            result = ingest_partitions(config, "shop1", [DAY])[DAY]
            outcomes.append((result.valid.drop("source_file", "source_line").sort(pl.all()), result.rejected_count))
    assert outcomes[0][0].equals(outcomes[1][0]) and outcomes[0][1] == outcomes[1][1]
