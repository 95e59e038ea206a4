"""The app layer: assembles the Dagster layer (assets/, resources/) into runnable definitions and
runs them (the `watershop run` runner, the Dagster instance, the Celery jobs).

Nothing below this layer imports it; see README "Layout" and the import-linter contracts in
pyproject.toml.
"""
