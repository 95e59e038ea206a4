"""Switchback experiments on store zones: declaration, randomised schedule, analysis, report."""
