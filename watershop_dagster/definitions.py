"""The Dagster code location, for the workspace config at $WATERSHOP_CONFIG (default ./data_lake/watershop.yaml)."""

from watershop_dagster.code_location import build_definitions

defs = build_definitions()
