"""Daily and monthly shop reports (HTML + chart PNGs + CSV figures), written after the day's marts."""

import dagster as dg

from assets.partitions import parse_shop_day
from resources import WatershopResource
from watershop_dagster.reports.report import write_daily_report, write_monthly_report

REPORT_INPUTS = [dg.AssetKey(["marts", name]) for name in (
    "daily_revenue", "payment_summary", "cans_per_day", "repeat_defaulters", "total_spent",
    "daily_visits", "traffic_per_hour", "first_last_customer", "peak_hours", "new_customers",
    "returning_customers", "customer_visit_counts",
)]


def build_reports_definitions(partitions: dg.PartitionsDefinition) -> dg.Definitions:
    @dg.asset(
        key=["reports", "shop_reports"],
        deps=REPORT_INPUTS,
        partitions_def=partitions,
        group_name="reports",
        kinds={"html"},
        description="The day's report and the month-to-date report of the shop, under <workspace>/reports/.",
    )
    def shop_reports(context: dg.AssetExecutionContext, watershop: WatershopResource) -> dg.MaterializeResult:
        cfg = watershop.config
        shop_id, day = parse_shop_day(context.partition_key)
        daily = write_daily_report(cfg, shop_id, day)
        monthly = write_monthly_report(cfg, shop_id, day)
        return dg.MaterializeResult(metadata={
            "daily_report": dg.MetadataValue.path(str(daily.html)),
            "monthly_report": dg.MetadataValue.path(str(monthly.html)),
        })

    return dg.Definitions(assets=[shop_reports])
