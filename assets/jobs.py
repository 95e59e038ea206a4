"""The jobs (shop-day and camera-day), one schedule per shop that runs its day after closing time, and the sensor that
re-runs a shop-day once the vision runs of its cameras are done.

Job names and selections live here, below every domain module, so the domains' sensors can name the
job they request without importing each other."""

from datetime import datetime, timedelta

import dagster as dg

from assets.partitions import DATE_DIM, WorkspacePartitions, parse_camera_day, shop_day_key
from watershop_dagster.config import ShopConfig

DAILY_JOB = "watershop_daily"
VISION_JOB = "watershop_vision"
VISION_GROUP = "vision"
SHELF_GROUP = "shelf"  # camera-day too: falls in shelf zones run in the vision job
RUN_AFTER_CLOSING = timedelta(hours=1)
CAMERA_DAY_ASSETS = dg.AssetSelection.groups(VISION_GROUP, SHELF_GROUP)
SHOP_DAY_ASSETS = dg.AssetSelection.all() - CAMERA_DAY_ASSETS
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

daily_job = dg.define_asset_job(
    DAILY_JOB,
    selection=SHOP_DAY_ASSETS,  # the retention job is separate; vision runs per camera-day
    description="Everything for one shop-day after vision: POS ingest, identity, marts, reports, checks.",
)

vision_job = dg.define_asset_job(
    VISION_JOB,
    selection=CAMERA_DAY_ASSETS,
    description="One camera-day of footage through the vision assets and their checks.",
)


def business_day_closed_by(shop: ShopConfig, scheduled: datetime):
    """The local business day whose closing the tick at `scheduled` follows."""
    return (scheduled.astimezone(shop.tz) - RUN_AFTER_CLOSING).date()


def after_closing_schedule(shop: ShopConfig) -> dg.ScheduleDefinition:
    """The shop's daily run, RUN_AFTER_CLOSING after its closing time in its own time zone."""
    run_at = (datetime.combine(datetime(2000, 1, 1), shop.closing_time) + RUN_AFTER_CLOSING).time()

    @dg.schedule(
        name=f"{shop.id}_after_closing",
        job=daily_job,
        cron_schedule=f"{run_at.minute} {run_at.hour} * * *",
        execution_timezone=shop.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Materializes {shop.id}'s day {RUN_AFTER_CLOSING} after its closing time ({shop.closing_time}).",
    )
    def after_closing(context: dg.ScheduleEvaluationContext):
        day = business_day_closed_by(shop, context.scheduled_execution_time)
        return dg.RunRequest(partition_key=shop_day_key(shop.id, day), run_key=f"{shop.id}:{day}")

    return after_closing


@dg.run_status_sensor(
    name="shop_day_after_vision",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[vision_job],
    request_job=daily_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the last pending vision run of a shop-day succeeds, re-runs that shop-day so "
                "visits and marts include the new faces.",
)
def shop_day_after_vision(context: dg.RunStatusSensorContext):
    partition = context.dagster_run.tags.get("dagster/partition")
    if not partition:
        return dg.SkipReason("vision run without a partition")
    shop_id, _, day = parse_camera_day(partition)
    pending = context.instance.get_runs(dg.RunsFilter(
        job_name=VISION_JOB, statuses=UNFINISHED, tags={f"dagster/partition/{DATE_DIM}": day.isoformat()}))
    if any(parse_camera_day(run.tags["dagster/partition"])[0] == shop_id
           for run in pending if run.run_id != context.dagster_run.run_id and "dagster/partition" in run.tags):
        return dg.SkipReason(f"other vision runs of {shop_id} {day} are still pending")
    return dg.RunRequest(partition_key=shop_day_key(shop_id, day), run_key=f"after-vision:{context.dagster_run.run_id}")


def build_jobs_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """The daily job and its schedules; the vision job and its follow-up sensor only with cameras."""
    schedules = [after_closing_schedule(shop) for shop in partitions.shops]
    if partitions.camera_day is None:
        return dg.Definitions(jobs=[daily_job], schedules=schedules)
    return dg.Definitions(jobs=[daily_job, vision_job], schedules=schedules, sensors=[shop_day_after_vision])
