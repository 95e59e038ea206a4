"""Partition keys, the camera-to-shop mapping and the range helpers of single-run backfills."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from assets.marts import dbt_scope
from assets.partitions import (
    camera_day_key,
    camera_day_partitions,
    camera_to_shop,
    parse_camera_day,
    parse_shop_day,
    range_metadata,
    shop_day_key,
    shop_day_partitions,
)
from watershop_dagster.config import WatershopConfig
from watershop_dagster.orchestration.runner import contiguous_stretches

CONFIG = WatershopConfig.model_validate({
    "partitions_start": "2025-01-01",
    "shops": [
        {"id": "water", "cameras": ["counter"]},
        {"id": "market", "cameras": ["door", "aisle-1"]},
        {"id": "kiosk", "cameras": []},
    ],
})


def test_keys_round_trip_as_objects_and_as_strings():
    day = date(2025, 3, 4)
    assert parse_shop_day(shop_day_key("water", day)) == ("water", day)
    assert parse_shop_day(str(shop_day_key("water", day))) == ("water", day)
    assert parse_camera_day(camera_day_key("market", "aisle-1", day)) == ("market", "aisle-1", day)
    assert parse_camera_day(str(camera_day_key("market", "aisle-1", day))) == ("market", "aisle-1", day)


def test_a_shop_day_depends_on_the_same_day_of_each_of_its_cameras():
    cameras, shops = camera_day_partitions(CONFIG), shop_day_partitions(CONFIG)
    assert set(cameras.get_partitions_def_for_dimension("camera").get_partition_keys()) == {
        "water.counter", "market.door", "market.aisle-1"}
    day = date(2025, 3, 4)
    upstream = camera_to_shop(CONFIG).get_upstream_mapped_partitions_result_for_partitions(
        shops.subset_with_partition_keys([str(shop_day_key("market", day))]), shops, cameras)
    assert set(upstream.partitions_subset.get_partition_keys()) == {
        str(camera_day_key("market", "door", day)), str(camera_day_key("market", "aisle-1", day))}


def test_a_workspace_without_cameras_has_no_camera_days():
    pos_only = WatershopConfig.model_validate({"shops": [{"id": "kiosk", "cameras": []}]})
    assert camera_day_partitions(pos_only) is None


def test_dbt_scope_covers_the_run_with_one_build():
    keys = [str(shop_day_key("water", date(2025, 3, d))) for d in (4, 2, 3)]
    assert dbt_scope(keys) == {"shop_id": "water", "date": "2025-03-02", "date_to": "2025-03-04"}
    keys.append(str(shop_day_key("market", date(2025, 3, 5))))
    assert dbt_scope(keys) == {"date": "2025-03-02", "date_to": "2025-03-05"}  # every shop of the days


def test_contiguous_stretches_split_at_missing_days():
    days = [date(2025, 3, d) for d in (5, 1, 2, 3, 7, 8)]
    assert contiguous_stretches(days) == [
        [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)], [date(2025, 3, 5)], [date(2025, 3, 7), date(2025, 3, 8)]]
    assert contiguous_stretches([]) == []


def test_range_metadata_sums_figures_and_lists_days():
    one = {("water", date(2025, 3, 1)): {"rows": 3, "path": "a"}}
    assert range_metadata(one) == {"rows": 3, "path": "a"}
    many = {**one, ("water", date(2025, 3, 2)): {"rows": 4, "path": "b", "flag": True}}
    merged = range_metadata(many)
    assert merged["shop_days"] == 2 and merged["rows"] == 7 and "flag" not in merged
    assert isinstance(merged["per_day"], dg.JsonMetadataValue)
    assert [d["date"] for d in merged["per_day"].value] == ["2025-03-01", "2025-03-02"]


@pytest.mark.parametrize("camera", ["a.b", "a|b", ""])
def test_camera_ids_that_would_break_partition_keys_are_refused(camera):
    with pytest.raises(ValueError, match="camera id"):
        WatershopConfig.model_validate({"shops": [{"id": "s", "cameras": [camera]}]})
