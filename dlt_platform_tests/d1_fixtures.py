"""Fixtures of the d1 lane (a pytest plugin of conftest.py): Cloudflare's D1 REST API played on loopback by
dlt_platform/source_types/d1/local_api.py over a real SQLite database, an application's tables in it, and
definitions reading them the way a user would write them."""

from __future__ import annotations

import json

import pytest

from dlt_platform.config import parse_definition
from dlt_platform.http import RetryPolicy
from dlt_platform.settings import Settings
from dlt_platform.source_types.d1.definition import D1SourceDefinition
from dlt_platform.source_types.d1.local_api import D1ApiServer, D1ApiState

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
API_TOKEN = "cf-d1-test-token-not-a-real-secret"
DATABASE_ID = "5e0c1d2a-7b3f-4c6d-8e9f-0a1b2c3d4e5f"
DATABASE_NAME = "APP_DB"

APP_SCHEMA = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL,
  score REAL,
  balance NUMERIC(12, 2),
  active BOOLEAN,
  signed_up DATE,
  avatar BLOB,
  profile TEXT,
  updated_at TEXT NOT NULL
);
CREATE INDEX users_updated_at ON users (updated_at);
CREATE TABLE events (kind TEXT, payload TEXT);
"""


def user_row(index: int, updated_at: str = "2026-01-01T00:00:00Z", email: str | None = None) -> tuple:
    return (index, email or f"user{index}@example.com", index / 4, f"{index % 1000}.25", index % 2,
            f"2025-{index % 12 + 1:02d}-01", bytes([index % 256, 0, 255]),
            json.dumps({"plan": "pro" if index % 3 == 0 else "free", "seats": index % 7}), updated_at)


USER_INSERT = "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


class Sleeps(list):
    """The retry policy's waits, recorded instead of slept (Retry-After is honoured without waiting)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def d1_state() -> D1ApiState:
    state = D1ApiState(ACCOUNT_ID, API_TOKEN)
    connection = state.add_database(DATABASE_ID)
    connection.executescript(APP_SCHEMA)
    return state


@pytest.fixture
def d1_api(d1_state):
    with D1ApiServer(d1_state) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def d1_settings(tmp_path, d1_api, sleeps) -> Settings:
    return Settings(
        config_path=tmp_path / "sources.json",
        data_dir=tmp_path / "data",
        destination_override="duckdb",
        cloudflare_api_base_url=d1_api.base_url,
        cloudflare_account_id=ACCOUNT_ID,
        cloudflare_api_token=API_TOKEN,
        retry_policy=RetryPolicy(attempts=4, backoff_seconds=0.01, max_backoff_seconds=0.05, sleep=sleeps),
    )


def d1_definition(tables=None, queries=None, **extract) -> D1SourceDefinition:
    data = {
        "source_id": "app_d1",
        "source_type": "d1",
        "destination": {"type": "duckdb", "dataset": "app", "write_disposition": "merge"},
        "extract": {"database_id": DATABASE_ID, "database_name": DATABASE_NAME,
                    "tables": tables if tables is not None else [{"name": "users", "cursor": "updated_at"}],
                    **({"queries": queries} if queries is not None else {}), **extract},
    }
    return parse_definition(data)
