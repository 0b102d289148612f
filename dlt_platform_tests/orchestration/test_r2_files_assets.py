"""r2_files sources in the code location: one multi-asset per source with an asset per table, lineage
r2/<bucket> -> r2/<bucket>/<prefix> -> table, the checks every table gets, a job and schedule; materialized through
Dagster from moto's S3 server on loopback into DuckDB, whole and a subset."""

import datetime as dt

import dagster as dg
import pytest

from dlt_platform.orchestration.code_location import build_code_location
from dlt_platform_tests.orchestration.conftest import read_table
from dlt_platform_tests.r2_files_fixtures import (
    BUCKET,
    R2_SECRET,
    http_request,
    logpush_batch,
    r2_definition,
)

LOGS = dg.AssetKey(["cloudflare_logs", "http_requests"])
ORDERS = dg.AssetKey(["cloudflare_logs", "orders"])
BUCKET_NODE = dg.AssetKey(["r2", "edge_logs"])
LOGPUSH_NODE = dg.AssetKey(["r2", "edge_logs", "logpush", "http_requests"])
EXPORTS_NODE = dg.AssetKey(["r2", "edge_logs", "exports", "orders"])
DAY = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def definition():
    return r2_definition(
        [
            {
                "type": "logpush",
                "dataset": "http_requests",
                "prefix": "logpush/http_requests",
                "timestamp_format": "rfc3339",
            },
            {
                "type": "files",
                "name": "orders",
                "glob": "exports/orders/*.csv",
                "format": "csv",
                "primary_key": "order_id",
                "write_disposition": "merge",
            },
        ],
        schedule="*/15 * * * *",
        freshness_hours=2,
    )


@pytest.fixture
def location(definition, r2_settings):
    location, problems = build_code_location([definition], r2_settings)
    assert problems == []
    return location


@pytest.fixture
def files(s3):
    key, body = logpush_batch([http_request(n, DAY, "rfc3339") for n in range(25)], DAY)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    s3.put_object(Bucket=BUCKET, Key="exports/orders/orders.csv", Body=b"order_id,status\n1,new\n2,paid\n")


def test_each_table_is_an_asset_downstream_of_its_folder_in_the_bucket(location):
    graph = location.get_repository_def().asset_graph
    assert {LOGS, ORDERS, BUCKET_NODE, LOGPUSH_NODE, EXPORTS_NODE} <= set(graph.get_all_asset_keys())
    assert graph.get(LOGS).assets_def.keys == {LOGS, ORDERS} and graph.get(LOGS).assets_def.can_subset
    assert graph.get(LOGS).parent_keys == {LOGPUSH_NODE} and graph.get(ORDERS).parent_keys == {EXPORTS_NODE}
    assert graph.get(LOGPUSH_NODE).parent_keys == {BUCKET_NODE} == graph.get(EXPORTS_NODE).parent_keys
    metadata = graph.get(LOGS).metadata
    assert metadata["file_glob"] == "logpush/http_requests/[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]/*.log.gz"
    assert metadata["incremental_cursor"] == "modification_date"
    assert graph.get(ORDERS).metadata["primary_key"] == "order_id"
    checks = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    for table in (LOGS, ORDERS):
        assert {(table, "row_count"), (table, "column_schema_change"), (table, "freshness_check")} <= checks
    repository = location.get_repository_def()
    assert repository.get_schedule_def("edge_logs_schedule").job_name == "load_edge_logs"


def test_the_whole_source_in_one_run(location, r2_settings, files):
    instance = dg.DagsterInstance.ephemeral()
    result = location.get_repository_def().get_job("load_edge_logs").execute_in_process(instance=instance)

    assert result.success
    assert read_table(r2_settings, "cloudflare_logs", "http_requests") == [(25,)]
    assert read_table(r2_settings, "cloudflare_logs", "orders") == [(2,)]
    rows = {
        key: instance.get_latest_materialization_event(key).asset_materialization.metadata["rows_by_table"].value
        for key in (LOGS, ORDERS)
    }
    assert rows == {LOGS: {"http_requests": 25}, ORDERS: {"orders": 2}}
    checks = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[(LOGS, "row_count")].metadata["table_row_count"].value == 25


def test_a_subset_reads_only_the_selected_table(location, r2_settings, files):
    instance = dg.DagsterInstance.ephemeral()
    job = location.get_repository_def().get_job("__ASSET_JOB")

    assert job.get_subset(asset_selection={ORDERS}).execute_in_process(instance=instance).success
    assert read_table(r2_settings, "cloudflare_logs", "orders") == [(2,)]
    assert instance.get_latest_materialization_event(LOGS) is None


def test_missing_credentials_fail_the_run_in_one_line_without_the_secret(definition, r2_settings, files):
    import dataclasses

    broken = dataclasses.replace(r2_settings, r2_access_key_id=None)
    location, problems = build_code_location([definition], broken)
    assert problems == []  # building the asset graph reads no credentials
    result = (
        location.get_repository_def()
        .get_job("load_edge_logs")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "DLT_R2_ACCESS_KEY_ID and DLT_R2_SECRET_ACCESS_KEY: required" in message
    assert R2_SECRET not in message
