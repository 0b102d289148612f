"""d1 sources through the Worker's D1 binding under wrangler dev (real local D1): 50,000 rows loaded, changed and
added rows loaded again (only they travel, merge keeps one row per key), and the platform's own ledger
(config/sources.example.json `dlt_platform_ledger`) loaded with nothing secret in it. The loads are the Python
side's, over `transport: worker`, against the session's stack (its Worker and local D1; its own runs fill the
ledger)."""

from __future__ import annotations

import json

import pytest

from dlt_platform.config import parse_definition, parse_sources_document
from dlt_platform.loads import run_load
from dlt_platform.local.stack import LocalStack
from dlt_platform.settings import PROJECT_ROOT, Settings
from dlt_platform_tests.bigquery_fixtures import DuckDBWarehouse, bigquery_settings
from dlt_platform_tests.e2e.stack_helpers import d1_execute

ROWS = 50_000


@pytest.fixture(scope="module")
def worker(stack) -> LocalStack:
    return stack




@pytest.fixture
def settings(worker, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", destination_override="duckdb", orchestrator_url=worker.worker_url,
                    internal_token=worker.tokens()["DLT_INTERNAL_TOKEN"])


@pytest.fixture(params=["duckdb", "bigquery"])
def lane(request, settings):
    if request.param == "bigquery":
        warehouse = request.getfixturevalue("bigquery_warehouse")
        return bigquery_settings(settings, warehouse.emulator), warehouse
    return settings, DuckDBWarehouse(settings)


def test_50000_rows_through_the_worker_then_only_the_changes(worker, lane):
    settings, warehouse = lane
    d1_execute(worker, f"""
        DROP TABLE IF EXISTS bulk_users;
        CREATE TABLE bulk_users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, avatar BLOB, updated_at TEXT NOT NULL);
        CREATE INDEX bulk_users_updated ON bulk_users (updated_at);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
        INSERT INTO bulk_users SELECT i, 'user' || i || '@example.com', randomblob(4),
          '2026-01-01T00:00:00.' || printf('%06d', i) || 'Z' FROM n;
    """)
    definition = parse_definition({
        "source_id": "bulk_users_worker", "source_type": "d1",
        "destination": {"type": "duckdb", "dataset": "app", "write_disposition": "merge"},
        "extract": {"database_id": "6f1c2a3e-8b4d-4e5f-9a7b-2c3d4e5f6a7b", "database_name": "DB",
                    "transport": "worker", "tables": [{"name": "bulk_users", "cursor": "updated_at"}]},
    })
    assert run_load(definition, settings).rows_by_table == {"bulk_users": ROWS}
    assert warehouse.query("select count(*), count(distinct id), min(length(avatar)) from app.bulk_users") == [
        (ROWS, ROWS, 8)]  # 4 bytes as base64

    d1_execute(worker, """
        UPDATE bulk_users SET email = 'changed' || id || '@example.com', updated_at = '2026-02-01T00:00:00Z'
          WHERE id <= 10;
        INSERT INTO bulk_users VALUES (50001, 'new1@example.com', NULL, '2026-02-02T00:00:00Z'),
          (50002, 'new2@example.com', NULL, '2026-02-02T00:00:01Z'), (50003, 'new3@example.com', NULL,
          '2026-02-02T00:00:02Z'), (50004, 'new4@example.com', NULL, '2026-02-02T00:00:03Z'),
          (50005, 'new5@example.com', NULL, '2026-02-02T00:00:04Z');
    """)
    assert run_load(definition, settings).rows_by_table == {"bulk_users": 15}
    assert warehouse.query("select count(*), count(distinct id) from app.bulk_users") == [(ROWS + 5, ROWS + 5)]
    assert warehouse.query("select email from app.bulk_users where id = 7") == [("changed7@example.com",)]


def test_the_ledger_loads_with_nothing_secret_in_it(worker, settings):
    with worker.operator() as operator:  # at least one run, with its events, in the ledger
        sources = json.loads((PROJECT_ROOT / "config" / "sources.json").read_text())["sources"]
        operator.request_run(sources[0]["source_id"])
    document = json.loads((PROJECT_ROOT / "config" / "sources.example.json").read_text())
    [ledger] = [d for d in parse_sources_document(document) if d.source_id == "dlt_platform_ledger"]
    ledger = ledger.model_copy(update={"destination": ledger.destination.model_copy(update={"type": "duckdb"})})

    rows = run_load(ledger, settings).rows_by_table
    assert rows["sources"] >= 1 and rows["source_versions"] >= 1 and rows["runs"] >= 1 and rows["run_events"] >= 1
    warehouse = DuckDBWarehouse(settings)
    tables = {name for (name,) in warehouse.query(
        "select table_name from information_schema.tables where table_schema = 'dlt_platform_meta' "
        "and not starts_with(table_name, '_dlt')")}
    assert tables >= {"sources", "source_versions", "runs", "run_events"}
    assert "admin_session_revocations" not in tables
    # No value of any loaded table holds one of the Worker's secrets.
    secrets = [value for name, value in worker.tokens().items() if value and (
        name.endswith("_TOKEN") or name.endswith("_KEY") or name.endswith("_SECRET"))]
    assert len(secrets) >= 4
    for table in tables:
        for row in warehouse.query(f"select * from dlt_platform_meta.{table}"):
            text = json.dumps(row, default=str)
            assert not any(secret in text for secret in secrets), table
    # Merged on their ids: a second run adds no row that is already there.
    run_load(ledger, settings)
    assert warehouse.query("select count(*) = count(distinct run_id) from dlt_platform_meta.runs") == [(True,)]
    assert warehouse.query("select count(*) = count(distinct event_id) from dlt_platform_meta.run_events") == [
        (True,)]
