"""`dlt-platform up --warehouse bigquery`: the local stack loading the BigQuery emulator, driven through the Worker."""

from __future__ import annotations

import datetime as dt

import pytest

from dlt_platform.local.loopback import free_port
from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform_tests.bigquery_fixtures import BigQueryWarehouse


@pytest.fixture(scope="module")
def bigquery_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("bigquery_stack")
    local = LocalStack(paths=StackPaths(state_dir=root / "state", data_dir=root / "data"), worker_port=free_port(),
                       dagster_port=free_port(), warehouse="bigquery", emulator_port=free_port())
    try:
        local.start(say=lambda _text: None)
        yield local
    finally:
        local.stop_all()


def test_a_run_requested_through_the_worker_lands_in_the_emulated_bigquery(bigquery_stack):
    assert bigquery_stack.dagster_env()["DLT_PLATFORM_DESTINATION"] == "bigquery"
    with bigquery_stack.operator() as operator:
        run_id = operator.request_run("cloudflare_kv_orders", limit=300)  # small: the emulator is slow per row
        runs = operator.wait_for_runs([run_id], timeout=300)
        run = operator.run(run_id)
    assert runs[run_id]["status"] == "succeeded", run
    assert run["tables"]["orders_kv"] == 300
    warehouse = BigQueryWarehouse(None, bigquery_stack.emulator)
    seeded = {entry.key for entry in sample_namespaces(dt.date.today())["ORDERS_KV"]}
    keys = {row[0] for row in warehouse.query("select cf_kv_key from source_cloudflare.orders_kv")}
    assert len(keys) == 300 and keys <= seeded
    assert warehouse.column_types("source_cloudflare", "orders_kv")["cf_kv_fetched_at"] == "TIMESTAMP"


def test_an_r2_files_run_requested_through_the_worker_lands_in_the_emulated_bigquery(bigquery_stack):
    with bigquery_stack.operator() as operator:
        run_id = operator.request_run("r2_edge_logs", limit=200)  # a sample of the seeded Logpush lines
        runs = operator.wait_for_runs([run_id], timeout=300)
        run = operator.run(run_id)
    assert runs[run_id]["status"] == "succeeded", run
    assert run["tables"]["http_requests"] == 200
    warehouse = BigQueryWarehouse(None, bigquery_stack.emulator)
    assert warehouse.query("select count(*) from source_r2.http_requests") == [(200,)]
    assert warehouse.column_types("source_r2", "http_requests")["edge_start_timestamp"] == "TIMESTAMP"
