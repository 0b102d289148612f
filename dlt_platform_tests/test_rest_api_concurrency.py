"""rest_api child resources fetched concurrently (dlt's parallelized resources in its extract workers), against the
loopback sample API answering each request after a delay, like a remote API: requests to the host overlap, the
host's request budget holds all the same (the API's own request log says so), and the tables are the ones a
one-request-at-a-time run makes, each row naming the page it came from."""

from __future__ import annotations

import pytest
from dlt.sources.helpers.rest_client import RESTClient

from dlt_platform.loads import run_load
from dlt_platform.settings import Settings
from dlt_platform.source_types.rest_api.local_api import LoggedRequest, SampleApiState, serve_sample_api

from .bigquery_fixtures import DuckDBWarehouse
from .rest_api_fixtures import API_KEY, TOKEN, TOKEN_ENV, allow_sample_api, rest_definition

ANSWER_DELAY = 0.05  # seconds the API takes to answer each request
# How much later than it left the API may log a request (threads, loopback transit): 27 ms was seen in CI beside
# three other test lanes on two cores, 115 ms at a load average of 15. A run that ignored the budget would pack all
# 75 requests into about 0.3 s, so spans of 25 requests and more still tell a budget kept from one ignored.
JITTER = 0.25


@pytest.fixture
def slow_api(monkeypatch):
    """36 issues, 2 comments each, every answer taking ANSWER_DELAY."""
    state = SampleApiState(TOKEN, API_KEY, issues=36, comments_per_issue=2, answer_delay=ANSWER_DELAY)
    server = serve_sample_api(state)
    state.url = server.url
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    allow_sample_api(monkeypatch, server.url)
    yield state
    server.stop()


def comments_extract(base_url: str, http: dict) -> dict:
    """Issues 12 a page; each issue's comments one a page, so every parent's child requests are two pages."""
    return {
        "client": {"base_url": base_url, "auth": {"type": "bearer", "token": {"env": TOKEN_ENV}},
                   "paginator": {"type": "header_link"}},
        "resource_defaults": {"primary_key": "id", "write_disposition": "replace"},
        "resources": [
            {"name": "issues", "endpoint": {"path": "issues", "params": {"per_page": 12}}},
            {"name": "issue_comments", "include_from_parent": ["id"],
             "endpoint": {"path": "issues/{resources.issues.number}/comments", "params": {"per_page": 1}}},
        ],
        "http": {"max_attempts": 2, "backoff_seconds": 0.1, **http},
    }


def most_in_flight(requests: list[LoggedRequest]) -> int:
    """The most requests the API was answering at one moment."""
    events = sorted([(r.at, 1) for r in requests] + [(r.answered_at, -1) for r in requests])
    in_flight = most = 0
    for _, step in events:
        in_flight += step
        most = max(most, in_flight)
    return most


def settings_in(tmp_path, name: str) -> Settings:
    return Settings(config_path=tmp_path / "sources.json", data_dir=tmp_path / name, destination_override="duckdb")


def table_rows(warehouse: DuckDBWarehouse, table: str) -> list[tuple]:
    # Row ids and load ids differ from run to run, fetch times too; everything else is compared.
    return warehouse.query(
        f"select * exclude (_dlt_id, _dlt_load_id, rest_api_fetched_at) from sample_api.{table} order by id"
    )


def test_child_requests_overlap_within_the_per_second_budget(slow_api, tmp_path, monkeypatch):
    concurrent = settings_in(tmp_path, "concurrent")
    run_load(rest_definition(comments_extract(slow_api.url, {"requests_per_second": 50})), concurrent)

    comments = slow_api.requests_to("/issues/")
    assert len(comments) == 36 * 2 and all(r.status == 200 for r in comments)
    # 50 a second, each answered in 50 ms: a request leaves before the one before it is answered.
    assert most_in_flight(comments) >= 2
    # Never more than the budget: any k+1 consecutive requests span at least k / 50 s.
    times = sorted(r.at for r in slow_api.log)
    for k in (25, 50):  # spans of 0.5 s and more, well above the logging jitter
        assert min(later - earlier for earlier, later in zip(times, times[k:], strict=False)) >= k / 50 - JITTER

    # Every comment is there, linked to its issue, and names the page it came from (the second is page 2).
    warehouse = DuckDBWarehouse(concurrent)
    rows = warehouse.query("select c.id, c._issues_id, i.id, i.number, c.rest_api_url from sample_api.issue_comments c "
                           "join sample_api.issues i on c._issues_id = i.id order by c.id")
    assert len(rows) == 72
    for comment_id, issue_link, issue_id, number, url in rows:
        assert issue_link == issue_id and comment_id // 100 == number
        assert url.startswith(f"{slow_api.url}/issues/{number}/comments?")
        assert ("page=2" in url) == (comment_id % 100 == 2), url

    # The same tables, columns and rows as one request at a time (one extract worker) makes.
    monkeypatch.setenv("EXTRACT__WORKERS", "1")
    first_sequential = len(slow_api.log)
    sequential = settings_in(tmp_path, "sequential")
    run_load(rest_definition(comments_extract(slow_api.url, {"requests_per_second": 50})), sequential)
    assert most_in_flight([r for r in slow_api.log[first_sequential:] if r.path.endswith("/comments")]) == 1
    one_at_a_time = DuckDBWarehouse(sequential)
    tables = ("select table_name from information_schema.tables where table_schema = 'sample_api' "
              "and table_name not like '_dlt_%' order by 1")
    expected = [("issue_comments",), ("issues",), ("issues__labels",)]
    assert warehouse.query(tables) == one_at_a_time.query(tables) == expected
    for table in ("issues", "issue_comments"):
        assert warehouse.columns("sample_api", table) == one_at_a_time.columns("sample_api", table)
        assert table_rows(warehouse, table) == table_rows(one_at_a_time, table)


def test_child_requests_overlap_within_the_window_budget(slow_api, tmp_path):
    # 3 issue pages and 72 comment pages, at most 25 in any second: the run takes about 3 seconds.
    http = {"requests_per_window": 25, "window_seconds": 1}
    run_load(rest_definition(comments_extract(slow_api.url, http)), settings_in(tmp_path, "data"))

    assert len(slow_api.log) == 3 + 72
    assert most_in_flight(slow_api.requests_to("/issues/")) >= 2
    times = sorted(r.at for r in slow_api.log)
    # Request i and request i+25 are at least a window apart: never 26 in one window.
    assert min(later - earlier for earlier, later in zip(times, times[25:], strict=False)) >= 1 - JITTER


def test_a_resource_without_a_paginator_pages_as_dlt_detects_and_rows_name_their_pages(tmp_path, monkeypatch):
    # 60 events, 25 a page with `total_pages` in the body, no paginator configured: dlt detects one.
    state = SampleApiState(TOKEN, API_KEY, events=60)
    server = serve_sample_api(state)
    try:
        monkeypatch.setenv("SAMPLE_API_KEY", API_KEY)
        allow_sample_api(monkeypatch, server.url)
        extract = {"client": {"base_url": server.url, "headers": {"X-Api-Key": {"env": "SAMPLE_API_KEY"}}},
                   "resources": [{"name": "events", "endpoint": {"path": "events", "data_selector": "results"}}]}
        settings = settings_in(tmp_path, "data")
        run_load(rest_definition(extract, source_id="sample_events"), settings)
        platform_requests = len(state.log)
        # dlt's own client on the same endpoint, nothing of the platform's around it.
        client = RESTClient(server.url, headers={"X-Api-Key": API_KEY})
        pages = list(client.paginate("events", data_selector="results"))
    finally:
        server.stop()
    assert platform_requests == len(pages) == len(state.log) // 2
    expected = sorted((item["id"], page.response.url) for page in pages for item in page)
    rows = DuckDBWarehouse(settings).query("select id, rest_api_url from sample_api.events")
    assert sorted(rows) == expected
    assert len({url for _, url in expected}) == len(pages) > 1
