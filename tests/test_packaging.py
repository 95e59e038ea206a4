"""A normal (non-editable) install of the wheel finds the dbt project it ships, and ships no tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _uv() -> list[str] | None:
    if shutil.which("uv"):
        return ["uv"]
    for python in ("python3.11", sys.executable):
        if shutil.which(python) and subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    return None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_installed_wheel_finds_its_dbt_project(tmp_path):
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (make env installs it)")
    build = subprocess.run([*uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {name for name in names if name.startswith("watershop_dagster/dbt_project/")}
    assert {"watershop_dagster/dbt_project/dbt_project.yml", "watershop_dagster/dbt_project/profiles.yml"} <= shipped
    expected_models = {f"watershop_dagster/{p.relative_to(ROOT)}" for p in (ROOT / "dbt_project" / "models").rglob("*.sql")}
    assert expected_models <= shipped
    assert not any("/target/" in name or "/logs/" in name for name in shipped)  # no build leftovers
    assert not any(name.startswith(("tests/", "bench/")) for name in names)

    # A pure-Python wheel installs by unpacking it; run from elsewhere so the checkout is not importable
    # as the current directory, and put the install first on the path (ahead of the editable one).
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (f"import sys; sys.path.insert(0, {str(site)!r}); import json; from watershop_dagster import dbt; "
              "print(json.dumps([dbt.__file__, str(dbt.DBT_PROJECT_DIR), dbt.dbt_project().project_dir.is_dir()]))")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    module, project_dir, exists = json.loads(result.stdout.strip().splitlines()[-1])
    assert module.startswith(str(site)) and project_dir == str(site / "watershop_dagster" / "dbt_project") and exists
