"""The rest_api lane: the loopback sample API (dlt_platform/source_types/rest_api/local_api.py), its credentials in the
environment, listed for sources and bound to its host as a deployment would list them (DLT_SOURCE_SECRETS, with
the loopback host explicitly allowed), and a definition that reads every collection of it the way a user would
write it."""

from __future__ import annotations

import copy
import json
from urllib.parse import urlsplit

import pytest

from dlt_platform.config import parse_definition
from dlt_platform.source_types.rest_api.definition import RestApiSourceDefinition
from dlt_platform.source_types.rest_api.local_api import SampleApiState, serve_sample_api

TOKEN, API_KEY = "tok_sample_0123456789", "key_sample_9876543210"
TOKEN_ENV, API_KEY_ENV = "SAMPLE_API_TOKEN", "SAMPLE_API_KEY"
QUERY_KEY_ENV = "SAMPLE_QUERY_KEY"  # an API key some tests send as a query parameter
# Retries fast enough for tests, still exponential: 0.1 s, 0.2 s, 0.4 s, ...
FAST_HTTP = {"max_attempts": 4, "backoff_seconds": 0.1, "max_retry_delay_seconds": 5}


@pytest.fixture
def sample_api(monkeypatch):
    state = SampleApiState(TOKEN, API_KEY, issues=45, charges=35, customers=23, events=60, comments_per_issue=2)
    server = serve_sample_api(state)
    state.url = server.url
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    allow_sample_api(monkeypatch, server.url)
    yield state
    server.stop()


def allow_sample_api(monkeypatch, url: str, *names: str) -> str:
    """Lists the sample API's secrets (and `names`) for sources, bound to its host:port, and allows sources to
    reach that loopback address; the host:port."""
    host = urlsplit(url).netloc
    secrets = {name: [host] for name in (TOKEN_ENV, API_KEY_ENV, QUERY_KEY_ENV, *names)}
    monkeypatch.setenv("DLT_SOURCE_SECRETS", json.dumps(secrets))
    monkeypatch.setenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS", host)
    return host


def issues_extract(base_url: str) -> dict:
    """GitHub-like: issues by header links with `since` for incremental loads, and each issue's comments."""
    return {
        "client": {"base_url": base_url, "auth": {"type": "bearer", "token": {"env": TOKEN_ENV}},
                   "paginator": {"type": "header_link"}},
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {"name": "issues", "endpoint": {
                "path": "issues", "params": {"per_page": 10},
                "incremental": {"cursor_path": "updated_at", "start_param": "since",
                                "initial_value": "2000-01-01T00:00:00Z"}}},
            {"name": "issue_comments", "include_from_parent": ["id"],
             "endpoint": {"path": "issues/{resources.issues.number}/comments"}},
        ],
        "http": dict(FAST_HTTP),
    }


def payments_extract(base_url: str) -> dict:
    """Stripe-like cursor pages (the last one still names a cursor), offsets and page numbers, API key."""
    return {
        "client": {"base_url": base_url, "headers": {"X-Api-Key": {"env": API_KEY_ENV}}},
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {"name": "charges", "endpoint": {
                "path": "charges", "params": {"limit": 10}, "data_selector": "data",
                "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "starting_after",
                              "has_more_path": "has_more"},
                "incremental": {"cursor_path": "updated_at", "start_param": "updated_since",
                                "initial_value": "2000-01-01T00:00:00Z"}}},
            {"name": "customers", "endpoint": {
                "path": "customers", "data_selector": "items",
                "paginator": {"type": "offset", "limit": 10, "total_path": "total"}}},
            {"name": "events", "endpoint": {
                "path": "events", "data_selector": "results",
                "paginator": {"type": "page_number", "base_page": 1, "total_path": "total_pages"}}},
        ],
        "http": dict(FAST_HTTP),
    }


def rest_definition(extract: dict, source_id: str = "sample_issues", dataset: str = "sample_api",
                    **fields) -> RestApiSourceDefinition:
    document = {"source_id": source_id, "source_type": "rest_api",
                "destination": {"type": "duckdb", "dataset": dataset}, "extract": copy.deepcopy(extract), **fields}
    return parse_definition(document)
