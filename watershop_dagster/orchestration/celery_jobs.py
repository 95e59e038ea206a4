"""The daily job on a distributed executor: every step becomes a Celery task run by any worker.

`watershop_daily` runs its steps inside the run's own process (one machine). `watershop_daily_celery`
selects the same assets and checks, but hands each step to Celery workers through a broker
(RabbitMQ), so several machines share the work. Workers need the same code, the same Dagster
instance (Postgres, see deploy/dagster.postgres.yaml) and the same workspace paths (config file,
landing and lake on shared storage; the DuckDB warehouse stays on the one machine whose worker runs
the dbt step).

This module is imported only by the code location's entry (watershop_dagster.definitions) and by
workers through the pointer below, never by the rest of the package. The job joins the code location only when $WATERSHOP_CELERY_BROKER is set, so the default embedded
setup is unchanged. Settings, all read from the environment:

    WATERSHOP_CELERY_BROKER   broker URL, e.g. pyamqp://guest:guest@127.0.0.1:5672//
    WATERSHOP_CELERY_BACKEND  result backend, default rpc:// (results return over the broker)
    WATERSHOP_CELERY_QUEUE    queue runs send their steps to, default dagster (workers: deploy/celery.yaml)

Workers: `dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml -- --pool solo`
(see deploy/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster_celery import celery_executor

from assets.jobs import CAMERA_DAY_ASSETS, SHOP_DAY_ASSETS, VISION_JOB
from watershop_dagster.orchestration.assemble import build_definitions

CELERY_JOB = "watershop_daily_celery"
VISION_CELERY_JOB = "watershop_vision_celery"
BROKER_ENV = "WATERSHOP_CELERY_BROKER"
BACKEND_ENV = "WATERSHOP_CELERY_BACKEND"
QUEUE_ENV = "WATERSHOP_CELERY_QUEUE"
DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
DEFAULT_QUEUE = "dagster"


def celery_enabled() -> bool:
    """The code location offers the Celery job only when a broker is configured."""
    return bool(os.environ.get(BROKER_ENV))


def _env_or(name: str, default: str) -> str | dict[str, str]:
    # An {"env": NAME} source is resolved in the run's process and never shows the URL (it may hold
    # a password) in the UI's run config.
    return {"env": name} if os.environ.get(name) else default


#: a worker takes a step only when free (late ack, one reserved): see deploy/celery.yaml
FAIR_DISPATCH = {"task_acks_late": True, "worker_prefetch_multiplier": 1}


def celery_run_config() -> dict:
    """The executor's run config: broker, backend and queue from the environment."""
    return {
        "execution": {
            "config": {
                "broker": _env_or(BROKER_ENV, DEFAULT_BROKER),
                "backend": _env_or(BACKEND_ENV, DEFAULT_BACKEND),
                "config_source": {"task_default_queue": os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE,
                                  **FAIR_DISPATCH},
            }
        }
    }


def _celery_job(name: str, selection: dg.AssetSelection, description: str):
    return dg.define_asset_job(name, selection=selection, executor_def=celery_executor,
                               config=celery_run_config(), description=description)


def build_celery_job():
    """The same selection as `watershop_daily`, on the Celery executor (config editable per run)."""
    return _celery_job(CELERY_JOB, SHOP_DAY_ASSETS, "Everything for one shop-day, each step run by a Celery worker.")


def build_vision_celery_job():
    """The same selection as `watershop_vision`: camera-day runs launched together (a backfill, the
    footage sensor) spread over the workers, one camera-day per worker."""
    return _celery_job(VISION_CELERY_JOB, CAMERA_DAY_ASSETS, "One camera-day of vision, its steps run by a Celery worker.")


def distributed_definitions(with_cameras: bool = True) -> dg.Definitions:
    """What the code location (watershop_dagster.definitions) merges in: the Celery jobs if a broker is configured."""
    if not celery_enabled():
        return dg.Definitions()
    return dg.Definitions(jobs=[build_celery_job(), *([build_vision_celery_job()] if with_cameras else [])])


def celery_job(config_file: str) -> dg.JobDefinition:
    """The Celery job of the workspace at `config_file`; the reconstructor workers call."""
    defs = build_definitions(Path(config_file))
    if not any(getattr(job, "name", None) == CELERY_JOB for job in defs.jobs or ()):
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[build_celery_job()]))
    return defs.resolve_job_def(CELERY_JOB)


def vision_celery_job(config_file: str) -> dg.JobDefinition:
    """The camera-day Celery job of the workspace at `config_file`; the reconstructor workers call."""
    defs = build_definitions(Path(config_file))
    if not any(getattr(job, "name", None) == VISION_CELERY_JOB for job in defs.jobs or ()):
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[build_vision_celery_job()]))
    return defs.resolve_job_def(VISION_CELERY_JOB)


def reconstructable_vision_celery_job(config_file: str | os.PathLike):
    """A pointer to `vision_celery_job(config_file)` (see reconstructable_celery_job)."""
    return dg.build_reconstructable_job(
        __name__, vision_celery_job.__name__, reconstructable_args=(str(Path(config_file).resolve()),)
    )


def reconstructable_celery_job(config_file: str | os.PathLike):
    """A pointer workers can rebuild the job from: this module's `celery_job(config_file)`.

    Runs launched from the UI or a schedule use the code location's pointer instead
    (watershop_dagster.definitions:defs), so workers then need the same $WATERSHOP_CONFIG and
    $WATERSHOP_CELERY_BROKER as the code server.
    """
    return dg.build_reconstructable_job(
        __name__, celery_job.__name__, reconstructable_args=(str(Path(config_file).resolve()),)
    )


def with_celery_jobs(defs: dg.Definitions) -> dg.Definitions:
    """`defs` plus the Celery jobs when a broker is configured (the vision one only with cameras)."""
    with_cameras = any(getattr(job, "name", None) == VISION_JOB for job in defs.jobs or ())
    return dg.Definitions.merge(defs, distributed_definitions(with_cameras))
