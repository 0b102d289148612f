"""The same r2_files loads into DuckDB and the BigQuery emulator (the production warehouse): Logpush timestamps
typed as TIMESTAMP, a second run reading only the new batch, CSV exports merged on their key."""

from __future__ import annotations

import datetime as dt

import pytest

from dlt_platform.loads import run_load

from .bigquery_fixtures import BigQueryWarehouse, DuckDBWarehouse, bigquery_settings
from .r2_files_fixtures import (
    BUCKET,
    http_request,
    latest_modified,
    logpush_batch,
    put_newer_than,
    r2_definition,
)

DAY = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["duckdb", "bigquery"])
def warehouse(request, r2_settings, monkeypatch):
    if request.param == "duckdb":
        yield DuckDBWarehouse(r2_settings)
        return
    emulator = request.getfixturevalue("bigquery_emulator")
    # Loads set these process-wide (the BigQuery client reads its host from the environment): undone after.
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulator.url)
    monkeypatch.setenv("NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION", "true")
    warehouse = BigQueryWarehouse(bigquery_settings(r2_settings, emulator), emulator)
    warehouse.drop_datasets()
    yield warehouse
    warehouse.drop_datasets()


def test_logpush_and_csv_tables_load_alike_into_each_warehouse(s3, warehouse):
    settings = warehouse.settings
    key, body = logpush_batch([http_request(n, DAY + dt.timedelta(seconds=n), "unix") for n in range(20)], DAY)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    s3.put_object(Bucket=BUCKET, Key="exports/orders/a.csv", Body=b"order_id,status\n1,new\n2,new\n")
    definition = r2_definition(
        [
            {
                "type": "logpush",
                "dataset": "http_requests",
                "prefix": "logpush/http_requests",
                "timestamp_format": "unix",
            },
            {
                "type": "files",
                "name": "orders",
                "glob": "exports/orders/*.csv",
                "format": "csv",
                "primary_key": "order_id",
                "write_disposition": "merge",
            },
        ]
    )
    assert run_load(definition, settings).rows_by_table == {"http_requests": 20, "orders": 2}

    key, body = logpush_batch(
        [http_request(n, DAY + dt.timedelta(minutes=5), "unix") for n in range(20, 25)], DAY + dt.timedelta(minutes=5)
    )
    put_newer_than(s3, key, body, latest_modified(s3))
    put_newer_than(s3, "exports/orders/a.csv", b"order_id,status\n1,new\n2,paid\n", latest_modified(s3))
    assert run_load(definition, settings).rows_by_table == {"http_requests": 5, "orders": 2}

    assert warehouse.query("select count(*), min(edge_start_timestamp) from cloudflare_logs.http_requests") == [
        (25, DAY)
    ]
    assert warehouse.query("select order_id, status from cloudflare_logs.orders order by order_id") == [
        (1, "new"),
        (2, "paid"),
    ]
    if isinstance(warehouse, BigQueryWarehouse):
        types = warehouse.column_types("cloudflare_logs", "http_requests")
        assert types["edge_start_timestamp"] == types["edge_end_timestamp"] == "TIMESTAMP"
