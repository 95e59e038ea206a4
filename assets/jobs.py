"""The jobs (shop-day and camera-day), one schedule per shop that runs its day after closing time, the sensor that
re-runs a shop-day once the vision runs of its cameras are done, and the behaviour sensors: after a shop-day's
identity, its people cameras' behaviour runs; after the last of them, the shop-day again (marts and reports).

Job names and selections live here, below every domain module, so the domains' sensors can name the
job they request without importing each other."""

from datetime import datetime, timedelta

import dagster as dg

from assets.partitions import (
    DATE_DIM,
    WorkspacePartitions,
    camera_day_key,
    parse_camera_day,
    parse_shop_day,
    shop_day_key,
)
from watershop_dagster import catalog
from watershop_dagster.behaviour.partition import people_cameras
from watershop_dagster.config import ShopConfig

DAILY_JOB = "watershop_daily"
VISION_JOB = "watershop_vision"
VISION_GROUP = "vision"
FRIGATE_JOB = "watershop_frigate"
FRIGATE_GROUP = "frigate"
BEHAVIOUR_JOB = "watershop_behaviour"
BEHAVIOUR_GROUP = "behaviour"
SHELF_GROUP = "shelf"  # camera-day too: falls in shelf zones run in the vision job
RUN_AFTER_CLOSING = timedelta(hours=1)
CAMERA_DAY_ASSETS = dg.AssetSelection.groups(VISION_GROUP, SHELF_GROUP)
FRIGATE_ASSETS = dg.AssetSelection.groups(FRIGATE_GROUP)
BEHAVIOUR_ASSETS = dg.AssetSelection.groups(BEHAVIOUR_GROUP)
SHOP_DAY_ASSETS = dg.AssetSelection.all() - CAMERA_DAY_ASSETS - FRIGATE_ASSETS - BEHAVIOUR_ASSETS
#: a run's tag naming what requested it; `watershop run` orders its own runs, so the sensors leave them alone
TRIGGER_TAG = "watershop/trigger"
TRIGGER_CLI = "cli"
TRIGGER_AFTER_BEHAVIOUR = "after_behaviour"
IDENTITIES = dg.AssetKey(catalog.FACE_IDENTITIES.asset_key)
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

#: in the definitions only with a `frigate:` section (assets.frigate adds it beside its assets)
frigate_job = dg.define_asset_job(
    FRIGATE_JOB,
    selection=FRIGATE_ASSETS,
    description="One camera-day of landed Frigate messages into the behaviour datasets (source=frigate).",
)


behaviour_job = dg.define_asset_job(
    BEHAVIOUR_JOB,
    selection=BEHAVIOUR_ASSETS,
    description="One camera-day's people, zone visits, loitering, footfall and heatmap, after the shop-day's identity.",
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


def behaviour_requests(run: dg.DagsterRun, shops: tuple[ShopConfig, ...]) -> list[dg.RunRequest]:
    """The behaviour camera-days a finished daily run calls for: its shop's people cameras, when the
    run built the shop-day's identities (not a marts-only run, not the re-run behaviour asked for)."""
    partition = run.tags.get("dagster/partition")
    if (not partition or run.tags.get(TRIGGER_TAG) in (TRIGGER_CLI, TRIGGER_AFTER_BEHAVIOUR)
            or (run.asset_selection is not None and IDENTITIES not in run.asset_selection)):
        return []
    shop_id, day = parse_shop_day(partition)
    cameras = next((people_cameras(shop) for shop in shops if shop.id == shop_id), [])
    return [dg.RunRequest(partition_key=camera_day_key(shop_id, camera, day),
                          run_key=f"after-identity:{run.run_id}:{camera}") for camera in cameras]


def behaviour_after_identity_sensor(shops: tuple[ShopConfig, ...]) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="behaviour_after_identity",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[daily_job],
        request_job=behaviour_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When a shop-day's identities are built, runs the behaviour of its people cameras (faces "
                    "seen on person tracks name them).",
    )
    def behaviour_after_identity(context: dg.RunStatusSensorContext):
        return behaviour_requests(context.dagster_run, shops) or dg.SkipReason("no behaviour to run")

    return behaviour_after_identity


@dg.run_status_sensor(
    name="shop_day_after_behaviour",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[behaviour_job],
    request_job=daily_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the last pending behaviour run of a shop-day succeeds, re-runs that shop-day so its marts "
                "and reports include the zone datasets.",
)
def shop_day_after_behaviour(context: dg.RunStatusSensorContext):
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    if not partition or run.tags.get(TRIGGER_TAG) == TRIGGER_CLI:
        return dg.SkipReason("a run `watershop run` orders itself, or one without a partition")
    shop_id, _, day = parse_camera_day(partition)
    pending = context.instance.get_runs(dg.RunsFilter(
        job_name=BEHAVIOUR_JOB, statuses=UNFINISHED, tags={f"dagster/partition/{DATE_DIM}": day.isoformat()}))
    if any(parse_camera_day(other.tags["dagster/partition"])[0] == shop_id
           for other in pending if other.run_id != run.run_id and "dagster/partition" in other.tags):
        return dg.SkipReason(f"other behaviour runs of {shop_id} {day} are still pending")
    return dg.RunRequest(partition_key=shop_day_key(shop_id, day), run_key=f"after-behaviour:{run.run_id}",
                         tags={TRIGGER_TAG: TRIGGER_AFTER_BEHAVIOUR})


def build_jobs_definitions(partitions: WorkspacePartitions) -> dg.Definitions:
    """The daily job and its schedules; the vision and behaviour jobs and their follow-up sensors only with
    cameras (the behaviour sensors only when some camera tracks people)."""
    schedules = [after_closing_schedule(shop) for shop in partitions.shops]
    if partitions.camera_day is None:
        return dg.Definitions(jobs=[daily_job], schedules=schedules)
    sensors = [shop_day_after_vision]
    if any(people_cameras(shop) for shop in partitions.shops):
        sensors += [behaviour_after_identity_sensor(partitions.shops), shop_day_after_behaviour]
    return dg.Definitions(jobs=[daily_job, vision_job, behaviour_job], schedules=schedules, sensors=sensors)
