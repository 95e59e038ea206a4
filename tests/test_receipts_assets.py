"""Receipts through Dagster: the asset body as a unit, `watershop receipts pull`, and a real `watershop run`
of a workspace with a water shop (no receipts) and a supermarket pulling from a local JSON API."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from assets import receipts as receipts_assets
from assets.jobs import build_jobs_definitions
from assets.partitions import WorkspacePartitions, shop_day_key
from resources import WatershopResource
from tests.test_receipts_ingest import DAY1, DAY2, POS_COLUMNS, _Api
from watershop_dagster import catalog, lake
from watershop_dagster.cli import main
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.orchestration.runner import run_range
from watershop_dagster.pos.generate import write_transaction_csvs

WATER_SHOP = """\
partitions_start: "2026-01-01"
shops:
  - id: north
    timezone: Asia/Kolkata
    cameras: []
    prices: {10L: 20, 20L: 35}
"""
ZONES_CSV = "category,zone,valid_from,valid_to\ndairy,Z1,,\nbakery,Z2,,\nsnacks,Z3,,\n"


def _supermarket(root, url: str | None) -> str:
    (root / "category_zones.csv").write_text(ZONES_CSV)
    source = (f"source: http, url: '{url}', cursor: line_id, headers: {{Authorization: 'Bearer s3cret'}}, "
              if url else "source: csv, ")
    columns = ", ".join(f"{k}: {v}" for k, v in POS_COLUMNS.items())
    return (f"  - id: super\n    timezone: Europe/Berlin\n    cameras: []\n"
            f"    receipts: {{{source}zone_map: category_zones.csv, columns: {{{columns}}}}}\n")


@pytest.fixture
def api():
    server = _Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_water_shop_workspace_has_no_receipts_assets(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(WATER_SHOP)
    graph = build_definitions(tmp_path / CONFIG_FILENAME).resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.executable_asset_keys}
    assert "lake/transactions" in keys and "lake/receipts" not in keys  # only the dbt source's external asset


def test_the_receipts_body_pulls_lands_and_publishes_the_zone_map(tmp_path, api):
    (tmp_path / CONFIG_FILENAME).write_text(WATER_SHOP + _supermarket(tmp_path, api.url))
    config = load_config(tmp_path / CONFIG_FILENAME)
    (body,) = receipts_assets.build_receipts_definitions(WorkspacePartitions.from_config(config)).assets
    context = dg.build_asset_context(partition_key=str(shop_day_key("super", DAY1)))
    landed, quarantined, zones = body(context, watershop=WatershopResource(config_path=str(tmp_path / CONFIG_FILENAME)))
    assert landed.metadata["lines"] == 3 and landed.metadata["receipts"] == 2 and landed.metadata["sales"] == 4.45
    assert quarantined.metadata["rejected_rows"] == 0  # the bad line is DAY2's
    assert zones.metadata["shops"].data == {"super": {"rows": 3, "path": str(
        lake.partition_file(config.lake_root, "category_zones", shop_id="super"))}}
    # the water shop's day of the same workspace materializes no receipts
    context = dg.build_asset_context(partition_key=str(shop_day_key("north", DAY1)))
    landed, _, _ = body(context, watershop=WatershopResource(config_path=str(tmp_path / CONFIG_FILENAME)))
    assert "no shop" in landed.metadata["receipts"]


def test_watershop_receipts_pull_lands_the_pulled_days(tmp_path, api):
    (tmp_path / CONFIG_FILENAME).write_text(WATER_SHOP + _supermarket(tmp_path, api.url))
    args = ["receipts", "pull", "--config", str(tmp_path / CONFIG_FILENAME), "--shop", "super"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "pulled 5 lines; high-water mark None -> 5" in result.output
    assert "landed 2 day(s) 2026-03-02 .. 2026-03-03: 4 lines, 1 quarantined" in result.output
    again = CliRunner().invoke(main, args)
    assert "pulled 0 lines; high-water mark 5 -> 5" in again.output
    water = CliRunner().invoke(main, ["receipts", "pull", "--config", str(tmp_path / CONFIG_FILENAME), "--shop", "north"])
    assert water.exit_code != 0 and "no database or API receipts source" in water.output


@pytest.mark.slow
def test_watershop_run_builds_the_sales_marts_beside_an_unchanged_water_shop(tmp_path, api):
    (tmp_path / CONFIG_FILENAME).write_text(WATER_SHOP + _supermarket(tmp_path, api.url))
    config = load_config(tmp_path / CONFIG_FILENAME)
    write_transaction_csvs(config, DAY1, DAY2, seed=3, shop_ids=["north"], transactions_per_day=20)
    runs = run_range(DAY1, DAY2, tmp_path / CONFIG_FILENAME)
    assert [r for r in runs if not r.success] == []
    quarantine = lake.read_dataset(config.lake_root, catalog.RECEIPTS_QUARANTINE, shop_id="super", date=DAY2)
    assert quarantine["reason"].to_list() == ["unit_price '-2.0' is negative"]
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        store_days = db.execute("select shop_id, date, receipts, lines, sales::double from fct_store_day "
                                "order by date").fetchall()
        zones = db.execute("select date, zone, sum(sales)::double from zone_sales_hourly group by all "
                           "order by all").fetchall()
        water_days = db.execute("select distinct shop_id from daily_revenue").fetchall()
    assert store_days == [("super", DAY1, 2, 3, 4.45), ("super", DAY2, 1, 1, 4.5)]
    assert zones == [(DAY1, "Z1", 3.0), (DAY1, "Z2", 2.25), (DAY2, "Z1", 4.5)]  # produce is in no zone
    assert water_days == [("north",)]


def test_the_landing_sensor_requests_the_days_of_new_and_changed_exports(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(WATER_SHOP + _supermarket(tmp_path, None))
    config = load_config(tmp_path / CONFIG_FILENAME)
    resources = {"watershop": WatershopResource(config_path=str(tmp_path / CONFIG_FILENAME))}
    partitions = WorkspacePartitions.from_config(config)
    repository = dg.Definitions.merge(receipts_assets.build_receipts_definitions(partitions),
                                      build_jobs_definitions(partitions),
                                      dg.Definitions(resources=resources)).get_repository_def()

    def tick(cursor):
        with dg.build_sensor_context(cursor=cursor, resources=resources, repository_def=repository) as context:
            result = receipts_assets.receipts_landing_sensor.evaluate_tick(context)
        return sorted(str(r.partition_key) for r in result.run_requests), result.cursor

    requests, cursor = tick(None)
    assert requests == []
    folder = config.receipts_landing / "super"
    folder.mkdir(parents=True)
    header = "bill_no,sold_at,sku,dept,qty,price,net\n"
    (folder / "export_2026-03-02.csv").write_text(header + "R1,2026-03-02 09:00,P1,dairy,1,1.5,1.5\n")
    (folder / "undated.csv").write_text(header + "R2,2026-03-03 09:00,P1,dairy,1,1.5,1.5\n")
    (folder / "pulled").mkdir()
    (folder / "pulled" / "2026-03-04.csv").write_text("receipt_id\n")  # written by the asset: not a trigger
    requests, cursor = tick(cursor)
    assert requests == ["2026-03-02|super", "2026-03-03|super"]
    assert tick(cursor)[0] == []
    (folder / "undated.csv").write_text(header + "R2,2026-03-05 09:00,P1,dairy,2,1.5,3.0\n")
    assert tick(cursor)[0] == ["2026-03-05|super"]
