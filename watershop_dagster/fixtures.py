"""Where the shared real-world test fixtures live (face photos, short videos)."""

from __future__ import annotations

import os
from pathlib import Path

FIXTURES_ENV_VAR = "WATERSHOP_FIXTURES"
REPO_ROOT = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    """$WATERSHOP_FIXTURES, else ../shared/fixtures beside the checkout."""
    return Path(os.environ.get(FIXTURES_ENV_VAR, REPO_ROOT.parent / "shared" / "fixtures")).resolve()
