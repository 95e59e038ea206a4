"""Supermarket receipts: the canonical line-item schema, its validation, zones, and a generator."""
