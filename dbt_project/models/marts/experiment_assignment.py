"""Every declared experiment's stored switchback schedule (`watershop experiment assign`), one row per
zone-day: the table the experiment report's calendar and BI tools read."""


def model(dbt, session):
    dbt.config(materialized="table")
    from watershop_dagster.experiment.marts import assignment_mart

    workspace = dbt.config.get("watershop_workspace") or ""
    return assignment_mart(workspace).to_arrow() if workspace else _empty()


def _empty():
    import polars as pl

    from watershop_dagster.experiment.marts import ASSIGNMENT_MART_SCHEMA

    return pl.DataFrame(schema=ASSIGNMENT_MART_SCHEMA).to_arrow()
