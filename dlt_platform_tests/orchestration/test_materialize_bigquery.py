"""A Dagster materialization into the emulated BigQuery: the production warehouse behind the same asset code."""

import dagster as dg

from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform_tests.orchestration.conftest import SAMPLE_COUNTS
from dlt_platform_tests.orchestration.dagster_runs import ORDERS, asset_job, latest_metadata


def test_materialize_a_source_into_bigquery_with_its_table_options(sample_definitions, bigquery_warehouse):
    orders = next(d for d in sample_definitions if d.source_id == "cloudflare_kv_orders").model_copy(deep=True)
    orders.destination = orders.destination.model_validate({
        **orders.destination.model_dump(), "type": "bigquery", "location": "EU",
        "partition_by": {"column": "cf_kv_fetched_at", "granularity": "day"}, "cluster_by": ["cf_kv_key"]})
    platform = build_platform_definitions([orders], bigquery_warehouse.settings)
    spec = platform.get_assets_def(ORDERS).specs_by_key[ORDERS]
    assert spec.metadata["bigquery_partition_by"] == "cf_kv_fetched_at (day)"
    assert spec.metadata["bigquery_cluster_by"] == "cf_kv_key" and spec.metadata["bigquery_location"] == "EU"
    assert "bigquery" in spec.kinds

    instance = dg.DagsterInstance.ephemeral()
    result = asset_job(platform).get_subset(asset_selection={ORDERS}).execute_in_process(instance=instance)
    assert result.success
    expected = SAMPLE_COUNTS["ORDERS_KV"]
    assert bigquery_warehouse.query("select count(*), count(distinct cf_kv_key) from source_cloudflare.orders_kv"
                                    ) == [(expected, expected)]
    metadata = latest_metadata(instance, ORDERS)
    assert metadata["destination"] == "bigquery" and metadata["rows_by_table"]["orders_kv"] == expected
    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    assert checks["row_count"].passed and checks["row_count"].metadata["table_row_count"].value == expected
