"""Each declared experiment's result per shop, from the zone-day sales of zone_sales_hourly, by the
same analysis as `watershop experiment analyse` (randomisation inference, cluster-robust CI, MDE,
store guard rail). Rebuilt whole on every build: an experiment's answer uses all of its days."""


def model(dbt, session):
    dbt.config(materialized="table")
    import polars as pl

    from watershop_dagster.experiment.marts import RESULTS_MART_SCHEMA, results_mart

    dbt.ref("experiment_assignment")  # the schedules the analysis reads (lineage)
    workspace = dbt.config.get("watershop_workspace") or ""
    if not workspace:
        return pl.DataFrame(schema=RESULTS_MART_SCHEMA).to_arrow()
    zone_days = dbt.ref("zone_sales_hourly").aggregate(
        "shop_id, zone, date, sum(sales)::double as sales", "shop_id, zone, date").pl()
    return results_mart(workspace, zone_days).to_arrow()
