"""The daily job over every asset, and one schedule per shop that runs it after closing time."""

from datetime import datetime, timedelta

import dagster as dg

from assets.partitions import shop_day_key
from watershop_dagster.config import ShopConfig, WatershopConfig

DAILY_JOB = "watershop_daily"
RUN_AFTER_CLOSING = timedelta(hours=1)


def build_daily_job():
    return dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all(),  # every shop-day asset; the retention job is separate
        description="Everything for one shop-day: ingest, checks, vision, marts.",
    )


def business_day_closed_by(shop: ShopConfig, scheduled: datetime):
    """The local business day whose closing the tick at `scheduled` follows."""
    return (scheduled.astimezone(shop.tz) - RUN_AFTER_CLOSING).date()


def build_shop_schedule(shop: ShopConfig, job) -> dg.ScheduleDefinition:
    run_at = (datetime.combine(datetime(2000, 1, 1), shop.closing_time) + RUN_AFTER_CLOSING).time()

    @dg.schedule(
        name=f"{shop.id}_after_closing",
        job=job,
        cron_schedule=f"{run_at.minute} {run_at.hour} * * *",
        execution_timezone=shop.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Materializes {shop.id}'s day {RUN_AFTER_CLOSING} after its closing time ({shop.closing_time}).",
    )
    def after_closing(context: dg.ScheduleEvaluationContext):
        day = business_day_closed_by(shop, context.scheduled_execution_time)
        return dg.RunRequest(partition_key=shop_day_key(shop.id, day), run_key=f"{shop.id}:{day}")

    return after_closing


def build_daily_definitions(config: WatershopConfig) -> dg.Definitions:
    job = build_daily_job()
    return dg.Definitions(jobs=[job], schedules=[build_shop_schedule(shop, job) for shop in config.shops])
