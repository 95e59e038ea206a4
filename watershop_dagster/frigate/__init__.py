"""Frigate NVR integration: import its cameras and zones into watershop.yaml."""
