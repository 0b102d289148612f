from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import pytest

from dlt_platform.config import SourceDefinition, parse_definition
from dlt_platform.duckdb_warehouse import read_connection
from dlt_platform.settings import Settings
from dlt_platform.source_types.cloudflare_kv.local_api import KVApiServer, KVApiState
from dlt_platform_tests.worker_kv_double import WorkerKVDouble

# The BigQuery emulator lane (session-scoped emulator, warehouse readers).
pytest_plugins = ["dlt_platform_tests.bigquery_fixtures", "dlt_platform_tests.d1_fixtures",
                  "dlt_platform_tests.r2_files_fixtures"]

# Test lanes (`pytest -m <lane>`), by folder: unit (loopback doubles, DuckDB, the emulator), orchestration (Dagster
# in process), e2e (one local stack per session, shared by its modules), production (Postgres, podman, the deploy
# rehearsal). `make test` runs them at once, each lane a pytest session of its own (tools/test_lanes.sh).
LANES = ("unit", "orchestration", "e2e", "production")


def lane_of(item: pytest.Item) -> str:
    parts = item.path.relative_to(Path(__file__).parent).parts
    return parts[0] if len(parts) > 1 and parts[0] in LANES else "unit"


def pytest_configure(config: pytest.Config) -> None:
    # A lane started in the background by a non-interactive shell (as CI starts `make test`) inherits SIGINT ignored.
    # Dagster gives SIGTERM the SIGINT handler (dagster._utils.interrupts.setup_interrupt_handlers), so after the
    # first run in this process SIGTERM was ignored too, and so was it by the `tail -F` processes of Dagster's
    # compute-log capture: a run executed on a thread then waited out two 30 s timeouts for them to stop, and left
    # them running. Python's own SIGINT handler, as in a terminal, keeps both signals working.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(getattr(pytest.mark, lane_of(item)))


ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
API_TOKEN = "cf-test-token-not-a-real-secret"
INTERNAL_TOKEN = "internal-test-token"
NAMESPACE_ID = "ns_orders"
NAMESPACE_TITLE = "ORDERS_KV"


@pytest.fixture
def kv_state() -> KVApiState:
    state = KVApiState(ACCOUNT_ID, API_TOKEN)
    state.add_namespace(NAMESPACE_ID, NAMESPACE_TITLE)
    return state


@pytest.fixture
def kv_api(kv_state):
    with KVApiServer(kv_state) as server:
        yield server


@pytest.fixture
def worker_kv(kv_state):
    with WorkerKVDouble(kv_state, INTERNAL_TOKEN) as double:
        yield double


@pytest.fixture
def settings(tmp_path: Path, kv_api, worker_kv) -> Settings:
    return Settings(
        config_path=tmp_path / "sources.json",
        data_dir=tmp_path / "data",
        destination_override="duckdb",
        cloudflare_api_base_url=kv_api.base_url,
        cloudflare_account_id=ACCOUNT_ID,
        cloudflare_api_token=API_TOKEN,
        orchestrator_url=worker_kv.url,
        internal_token=INTERNAL_TOKEN,
    )


def make_definition(**overrides) -> SourceDefinition:
    """A KV source definition over the test namespace; nested dicts in overrides replace whole sections."""
    data = {
        "source_id": "test_orders",
        "source_type": "cloudflare_kv",
        "destination": {"type": "duckdb", "dataset": "source_test", "table": "orders_kv",
                        "write_disposition": "replace"},
        "extract": {"namespace_id": NAMESPACE_ID, "namespace_title": NAMESPACE_TITLE},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_definition(data)


def query(settings: Settings, sql: str) -> list[tuple]:
    with read_connection(settings.duckdb_path) as connection:
        return connection.execute(sql).fetchall()


def columns(settings: Settings, schema: str, table: str) -> set[str]:
    rows = query(settings, f"select column_name from information_schema.columns where table_schema = '{schema}' "
                           f"and table_name = '{table}'")
    return {row[0] for row in rows}


FIXED_NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
