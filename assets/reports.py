"""Daily and monthly shop reports (HTML + chart PNGs + CSV figures), written after the day's marts."""

import dagster as dg

from assets.marts import SERVED_MARTS
from assets.partitions import WorkspacePartitions, parse_shop_day
from resources import WatershopResource
from watershop_dagster.reports.report import write_daily_report, write_monthly_report

REPORT_INPUTS = [dg.AssetKey(["marts", name]) for name in SERVED_MARTS]


def shop_reports(context: dg.AssetExecutionContext, watershop: WatershopResource) -> dg.MaterializeResult:
    """Each day's report; each month's report once, as of the run's last day in that month."""
    cfg = watershop.config
    shop_days = sorted(parse_shop_day(key) for key in context.partition_keys)
    daily = [write_daily_report(cfg, shop_id, day) for shop_id, day in shop_days]
    month_ends = {(shop_id, day.year, day.month): (shop_id, day) for shop_id, day in shop_days}
    monthly = [write_monthly_report(cfg, shop_id, day) for shop_id, day in month_ends.values()]
    return dg.MaterializeResult(metadata={
        "daily_reports": len(daily),
        "daily_report": dg.MetadataValue.path(str(daily[-1].html)),
        "monthly_report": dg.MetadataValue.path(str(monthly[-1].html)),
    })


def build_reports_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    return dg.Definitions(assets=[dg.asset(
        key=["reports", "shop_reports"],
        deps=REPORT_INPUTS,
        partitions_def=partitions.shop_day,
        group_name="reports",
        kinds={"html"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        description="The day's report and the month-to-date report of the shop, under <workspace>/reports/.",
    )(shop_reports)])
