"""The BigQuery lane: one emulator per test session, settings that load into it, and readers of both warehouses.

Tests that take `warehouse` run against DuckDB and against the emulated BigQuery (its REST API, through the
official google-cloud-bigquery client, as dlt uses it in production). Every BigQuery test starts on an empty
emulator: the datasets a test created are dropped after it.
"""

from __future__ import annotations

import dataclasses

import duckdb
import orjson
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from dlt_platform.local.bigquery_emulator import BigQueryEmulator
from dlt_platform.local.loopback import free_port
from dlt_platform.settings import Settings


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory):
    emulator = BigQueryEmulator(port=free_port(), project_id="test-project",
                                log_path=tmp_path_factory.mktemp("bqemulator") / "bqemulator.log")
    with emulator:
        yield emulator


def emulator_client(emulator: BigQueryEmulator) -> bigquery.Client:
    return bigquery.Client(project=emulator.project_id, credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": emulator.url})


class DuckDBWarehouse:
    name = "duckdb"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.settings.duckdb_path), read_only=True) as connection:
            return connection.execute(sql).fetchall()

    def columns(self, dataset: str, table: str) -> set[str]:
        return {row[0] for row in self.query(
            f"select column_name from information_schema.columns where table_schema = '{dataset}' "
            f"and table_name = '{table}'")}


class BigQueryWarehouse:
    """Reads the emulator like an analyst would. JSON values come back as compact JSON text, as DuckDB gives
    them, so one assertion holds for both; `column_types` tells the real types apart."""

    name = "bigquery"

    def __init__(self, settings: Settings, emulator: BigQueryEmulator) -> None:
        self.settings, self.emulator = settings, emulator
        self.client = emulator_client(emulator)

    def query(self, sql: str) -> list[tuple]:
        sql = sql.replace(" exclude (", " except (")  # DuckDB's spelling of BigQuery's SELECT * EXCEPT
        return [tuple(orjson.dumps(value).decode() if isinstance(value, (dict, list)) else value for value in row)
                for row in self.client.query(sql).result()]

    def table(self, dataset: str, table: str) -> bigquery.Table:
        return self.client.get_table(f"{self.emulator.project_id}.{dataset}.{table}")

    def columns(self, dataset: str, table: str) -> set[str]:
        return {field.name for field in self.table(dataset, table).schema}

    def column_types(self, dataset: str, table: str) -> dict[str, str]:
        return {field.name: field.field_type for field in self.table(dataset, table).schema}

    def drop_datasets(self) -> None:
        for dataset in self.client.list_datasets():
            self.client.delete_dataset(dataset.dataset_id, delete_contents=True, not_found_ok=True)


def bigquery_settings(settings: Settings, emulator: BigQueryEmulator) -> Settings:
    """The test settings, loading into the emulator instead of DuckDB."""
    return dataclasses.replace(settings, destination_override="bigquery", bigquery_emulator_host=emulator.url,
                               bigquery_project_id=emulator.project_id)


@pytest.fixture
def bigquery_warehouse(settings, bigquery_emulator, monkeypatch):
    # Loads set these process-wide (the BigQuery client reads its host from the environment): undone after.
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator.url)
    monkeypatch.setenv("NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION", "true")
    warehouse = BigQueryWarehouse(bigquery_settings(settings, bigquery_emulator), bigquery_emulator)
    warehouse.drop_datasets()
    yield warehouse
    warehouse.drop_datasets()
