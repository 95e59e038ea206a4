"""Run `watershop` with a fault at a named stage: `python -m tests.fault_injection STAGE TICK ACTION -- <cli args>`.

ACTION `kill`: the process SIGKILLs itself (a real kill -9: no `finally`, no atexit, no flush);
`unmount`: it renames the lake folder to `<lake>.unmounted` (what an unmounted NAS behind the
workspace's `lake` symlink looks like) and carries on. Either happens at the TICK-th moment of STAGE, counted from real markers of the run rather than from wall-clock time, so a seed
picks the same point on a fast or a loaded machine:

* ``ingest`` / ``identity``: tick 0 is the STEP_START the run writes to its Dagster event log for the
  stage's first step; then each atomic rename into the lake is two ticks: just before it (the temp
  file complete, not yet in place) and just after it (in place, Dagster not yet told).
* ``dbt``: tick k is dbt's k-th node result (model or test) in the marts step.
* ``publish``: each rename of the publish is two ticks, before and after: the new build's folder
  into `warehouse/builds/` (ticks 0, 1), the `current` link switched to it (2, 3), the served file
  when its marts changed.

At the fault it prints ``fault: <action> at <stage> tick <k>: <what>`` to stderr. Nothing is patched
but the observation points; every write, dbt build and Dagster event is the real one.
"""

from __future__ import annotations

import os
import signal
import sys

from watershop_dagster.dbt_runner import RESULT_EVENTS

STAGE_STEPS = {
    "ingest": {"transactions"},
    "identity": {"customer_registry", "visits", "transaction_links"},
    "dbt": {"watershop_marts"},
    "publish": {"watershop_marts"},
}
STAGES = tuple(STAGE_STEPS)
ACTIONS = ("kill", "unmount")
UNMOUNTED_SUFFIX = ".unmounted"


class KillSwitch:
    def __init__(self, stage: str, tick: int, action: str, lake_root: str, marts_db: str):
        self.stage, self.tick, self.action, self.seen = stage, tick, action, -1
        self.lake_root, self.marts_db = os.path.realpath(lake_root), os.path.realpath(marts_db)
        warehouse = os.path.dirname(self.marts_db)
        self.published = {os.path.join(warehouse, "builds"), os.path.join(warehouse, "current"), self.marts_db}
        self.step: str | None = None
        self.report = os.fdopen(os.dup(2), "w")  # the CLI sends fd 2 to its log file while it runs

    def advance(self, what: str) -> None:
        self.seen += 1
        if self.seen == self.tick:
            self.report.write(f"fault: {self.action} at {self.stage} tick {self.tick}: {what}\n")
            self.report.flush()
            if self.action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            os.rename(self.lake_root, self.lake_root + UNMOUNTED_SUFFIX)

    def in_stage(self) -> bool:
        return self.step in STAGE_STEPS[self.stage]

    def step_started(self, step_key: str) -> None:
        self.step = step_key
        if self.stage in ("ingest", "identity") and self.in_stage() and self.seen < 0:
            self.advance(f"STEP_START {step_key}")

    def renaming(self, dst: str, done: bool) -> None:
        target = os.path.realpath(dst)
        unresolved = os.path.join(os.path.realpath(os.path.dirname(dst)), os.path.basename(dst))  # `current` is a link
        if self.stage == "publish" and (unresolved in self.published or os.path.dirname(unresolved) in self.published):
            self.advance(f"{'after' if done else 'before'} renaming into {unresolved}")
        elif self.stage in ("ingest", "identity") and self.in_stage() and self.seen >= 0 \
                and target.startswith(self.lake_root + os.sep):
            self.advance(f"{'after' if done else 'before'} renaming into {os.path.relpath(target, self.lake_root)}")

    def dbt_event(self, event: dict) -> None:
        if self.stage == "dbt" and event.get("info", {}).get("name") in RESULT_EVENTS:
            self.advance(f"dbt node {event['data']['node_info'].get('unique_id')} finished")


def install(switch: KillSwitch) -> None:
    from dagster import DagsterInstance

    from watershop_dagster.dbt_runner import DbtWorkspaceRunner

    handle_new_event = DagsterInstance.handle_new_event

    def observed_event(self, event, *args, **kwargs):
        result = handle_new_event(self, event, *args, **kwargs)
        if event.dagster_event is not None and event.dagster_event.event_type_value == "STEP_START":
            switch.step_started(event.dagster_event.step_key)
        return result

    replace = os.replace

    def observed_replace(src, dst, *args, **kwargs):
        switch.renaming(os.fspath(dst), done=False)
        replace(src, dst, *args, **kwargs)
        switch.renaming(os.fspath(dst), done=True)

    build = DbtWorkspaceRunner.build

    def observed_build(self, config, scope=None, extra_args=None, on_event=None):
        def both(event):
            switch.dbt_event(event)
            if on_event:
                on_event(event)
        return build(self, config, scope, extra_args, both)

    DagsterInstance.handle_new_event = observed_event
    os.replace = observed_replace
    DbtWorkspaceRunner.build = observed_build


def main(argv: list[str]) -> None:
    stage, tick, action, separator, *cli_args = argv
    assert stage in STAGES and action in ACTIONS and separator == "--", argv
    from watershop_dagster.cli import main as cli
    from watershop_dagster.config import load_config

    config = load_config(cli_args[cli_args.index("--config") + 1])
    install(KillSwitch(stage, int(tick), action, str(config.lake_root), str(config.marts_db)))
    cli(cli_args, prog_name="watershop")


if __name__ == "__main__":
    main(sys.argv[1:])
