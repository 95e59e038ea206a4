"""Serving settings: host, ports and the API key.

Read from the config's optional `serving:` section when the config model has one (proposed:
`serving: {host: 127.0.0.1, dashboard_port: 8501, api_port: 8000, api_key: null}`), else defaults.
The API key is taken, in order, from an explicit argument, `$WATERSHOP_API_KEY`, then the config.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from watershop_dagster.config import WatershopConfig

API_KEY_ENV_VAR = "WATERSHOP_API_KEY"
API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True)
class ServingSettings:
    host: str = "127.0.0.1"
    dashboard_port: int = 8501
    api_port: int = 8000
    api_key: str | None = None


def serving_settings(config: WatershopConfig) -> ServingSettings:
    section = getattr(config, "serving", None)
    if section is None:
        return ServingSettings()
    defaults = ServingSettings()
    return ServingSettings(
        host=getattr(section, "host", None) or defaults.host,
        dashboard_port=getattr(section, "dashboard_port", None) or defaults.dashboard_port,
        api_port=getattr(section, "api_port", None) or defaults.api_port,
        api_key=getattr(section, "api_key", None),
    )


def resolve_api_key(config: WatershopConfig | None, explicit: str | None = None) -> str | None:
    for candidate in (explicit, os.environ.get(API_KEY_ENV_VAR),
                      serving_settings(config).api_key if config is not None else None):
        if candidate:
            secret = candidate.get_secret_value() if hasattr(candidate, "get_secret_value") else str(candidate)
            if secret.strip():
                return secret.strip()
    return None


def reports_dir(config: WatershopConfig) -> Path:
    """`<workspace>/reports`, or `paths.reports` if the config model defines it."""
    configured = getattr(config.paths, "reports", None)
    if configured is not None:
        return config._resolve(Path(configured))
    return config.workspace_dir / "reports"


def is_loopback(host: str | None) -> bool:
    """Whether a server bound to `host` is reachable from this machine only. No address means every
    interface (Streamlit's default), and a host name other than localhost may resolve anywhere."""
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
