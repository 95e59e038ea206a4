"""Serving the marts: a Streamlit dashboard, a read-only HTTP API and the shared read layer.

Everything here reads the served marts file (`config.marts_db`) read-only through
`watershop_dagster.serving.marts.MartsReader`, which follows each build the pipeline publishes;
`postgres` copies each build to PostgreSQL when configured.
"""
