"""The dbt manifest every definitions load may re-parse: never read half-written, never left truncated.

Processes load the definitions at once (the UI beside `watershop run`, parallel test lanes). A
stale manifest used to be re-parsed by each of them into the same file, and a reader could see it
empty; a parse killed half way left a truncated manifest every later load failed on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dagster_dbt import DbtProject

from watershop_dagster.dbt import DBT_PROJECT_DIR, ensure_manifest

LOAD = """
import json, sys
from pathlib import Path
from dagster_dbt import DbtProject
from watershop_dagster.dbt import ensure_manifest
project = DbtProject(project_dir=Path(sys.argv[1]), profiles_dir=Path(sys.argv[1]))
print(len(json.loads(ensure_manifest(project).read_bytes())["nodes"]))
"""


def project_copy(tmp_path: Path) -> DbtProject:
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return DbtProject(project_dir=copy, profiles_dir=copy)


def test_an_empty_manifest_left_by_a_killed_parse_is_parsed_again(tmp_path):
    project = project_copy(tmp_path)
    manifest = Path(project.manifest_path)
    manifest.parent.mkdir(parents=True)
    manifest.write_bytes(b"")
    os.utime(manifest, (time.time() + 60, time.time() + 60))  # newer than every model: only its size says stale
    assert json.loads(ensure_manifest(project).read_bytes())["nodes"]
    assert [p.name for p in manifest.parent.iterdir() if p.name.startswith(".parse-")] == []


def test_processes_loading_a_stale_project_at_once_all_read_a_whole_manifest(tmp_path):
    project = project_copy(tmp_path)
    loads = [subprocess.Popen([sys.executable, "-c", LOAD, str(project.project_dir)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in loads]
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    assert len({out for _, out, _ in results}) == 1 and int(results[0][1]) > 100
