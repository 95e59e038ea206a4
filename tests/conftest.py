from __future__ import annotations

from pathlib import Path

import pytest

from watershop_dagster.fixtures import FIXTURES_ENV_VAR, fixtures_dir


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared fixtures not found at {path} (set {FIXTURES_ENV_VAR} to their folder)")
    return path


@pytest.fixture(scope="session")
def fixtures_root() -> Path:
    return _require(fixtures_dir())


@pytest.fixture(scope="session")
def faces_dir(fixtures_root: Path) -> Path:
    return _require(fixtures_root / "faces")


@pytest.fixture(scope="session")
def videos_dir(fixtures_root: Path) -> Path:
    return _require(fixtures_root / "video")
