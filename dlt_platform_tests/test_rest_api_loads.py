"""rest_api sources through dlt into DuckDB and the emulated BigQuery, against the loopback sample API."""

import dataclasses
import datetime as dt
import gzip
import json
import logging

import pytest

from dlt_platform.load_request import LoadRequest
from dlt_platform.loads import run_load
from dlt_platform.settings import Settings
from dlt_platform.source_types.rest_api.errors import MissingSecret, RestApiError
from dlt_platform.source_types.rest_api.local_api import EPOCH

from .bigquery_fixtures import DuckDBWarehouse
from .rest_api_fixtures import (
    TOKEN,
    TOKEN_ENV,
    issues_extract,
    payments_extract,
    rest_definition,
    sample_api,  # noqa: F401 (fixture)
)


@pytest.fixture(params=["duckdb", "bigquery"])
def lane(request, tmp_path):
    settings = Settings(config_path=tmp_path / "sources.json", data_dir=tmp_path / "data", destination_override="duckdb")
    if request.param == "bigquery":
        warehouse = request.getfixturevalue("bigquery_warehouse")
        return dataclasses.replace(warehouse.settings, data_dir=tmp_path / "data"), warehouse
    return settings, DuckDBWarehouse(settings)


@pytest.fixture
def duckdb_settings(tmp_path):
    return Settings(config_path=tmp_path / "sources.json", data_dir=tmp_path / "data", destination_override="duckdb")


def counts(warehouse, dataset: str, table: str) -> tuple[int, int]:
    return warehouse.query(f"select count(*), count(distinct id) from {dataset}.{table}")[0]


def test_every_pagination_style_loads_each_item_once(sample_api, lane):
    settings, warehouse = lane
    issues = rest_definition(issues_extract(sample_api.url))
    payments = rest_definition(payments_extract(sample_api.url), source_id="sample_payments")

    first = run_load(issues, settings)
    run_load(payments, settings)

    assert first.rows_by_table["issues"] == 45 and first.rows_by_table["issue_comments"] == 90
    assert counts(warehouse, "sample_api", "issues") == (45, 45)
    assert counts(warehouse, "sample_api", "issue_comments") == (90, 90)  # one comments endpoint per issue
    assert counts(warehouse, "sample_api", "charges") == (35, 35)
    assert counts(warehouse, "sample_api", "customers") == (23, 23)
    assert counts(warehouse, "sample_api", "events") == (60, 60)
    # Header links: 5 pages of 10; cursor: 4 pages, none after has_more=false although the page names a cursor;
    # offset: stops at total (3 pages); page numbers: stops at total_pages (3 pages).
    assert len(sample_api.requests_to("/issues?")) + len([r for r in sample_api.log if r.path == "/issues"]) == 5
    assert len(sample_api.requests_to("/charges")) == 4
    assert len(sample_api.requests_to("/customers")) == 3
    assert len(sample_api.requests_to("/events")) == 3
    assert len([r for r in sample_api.log if r.path.endswith("/comments")]) == 45
    # Child rows keep their parent's id; every row has its audit columns.
    assert warehouse.query("select count(*) from sample_api.issue_comments c join sample_api.issues i "
                           "on c._issues_id = i.id where cast(c.id / 100 as int) = i.number")[0][0] == 90
    rows = warehouse.query("select rest_api_url, rest_api_fetched_at from sample_api.issues order by id limit 1")
    assert rows[0][0].startswith(f"{sample_api.url}/issues?") and "per_page=10" in rows[0][0]
    assert rows[0][1] is not None
    assert warehouse.query("select count(*) from sample_api.charges where rest_api_url is null "
                           "or rest_api_fetched_at is null")[0][0] == 0


def test_the_incremental_second_run_fetches_only_what_changed_and_merges(sample_api, lane):
    settings, warehouse = lane
    definition = rest_definition(issues_extract(sample_api.url))
    run_load(definition, settings)
    first_run_requests = len(sample_api.log)

    later = EPOCH + dt.timedelta(days=3)
    sample_api.touch_issue(7, later, title="Issue 7 (edited)")
    for _ in range(3):
        sample_api.add_issue(comments=1, updated_at=later + dt.timedelta(minutes=1))
    second = run_load(definition, settings)

    second_run = sample_api.log[first_run_requests:]
    issue_pages = [r for r in second_run if r.path == "/issues"]
    # The cursor dlt kept after the first run: the latest updated_at it saw (issue 45's).
    assert [r.query.get("since") for r in issue_pages] == ["2026-01-01T00:45:00Z"]
    # Only issues changed since then (7 and the three new ones; 45 is at the boundary and dlt drops it as seen)
    # had their comments fetched.
    assert sorted(int(r.path.split("/")[2]) for r in second_run if r.path.endswith("/comments")) == [7, 46, 47, 48]
    assert second.rows_by_table["issues"] == 4
    assert counts(warehouse, "sample_api", "issues") == (48, 48)
    assert counts(warehouse, "sample_api", "issue_comments") == (93, 93)
    assert warehouse.query("select title from sample_api.issues where number = 7") == [("Issue 7 (edited)",)]

    # A third run with nothing new fetches one page and writes nothing twice.
    third = run_load(definition, settings)
    assert third.rows_by_table.get("issues", 0) == 0
    assert counts(warehouse, "sample_api", "issues") == (48, 48)


def test_429_with_retry_after_and_a_500_are_retried_without_a_storm(sample_api, duckdb_settings):
    definition = rest_definition(payments_extract(sample_api.url), source_id="sample_payments")
    sample_api.fail_next("/customers", 429, {"Retry-After": "1"})
    sample_api.fail_next("/events", 500)
    sample_api.fail_next("/charges", 429, {"Retry-After": "0"}, times=2)

    result = run_load(definition, duckdb_settings)

    assert result.rows_by_table["customers"] == 23 and result.rows_by_table["events"] == 60
    assert result.rows_by_table["charges"] == 35
    customers = sample_api.requests_to("/customers")
    assert [r.status for r in customers[:2]] == [429, 200]
    assert customers[1].at - customers[0].at >= 0.95  # Retry-After: 1 was honoured
    events = sample_api.requests_to("/events")
    assert [r.status for r in events[:2]] == [500, 200]
    charges = sample_api.requests_to("/charges")
    assert [r.status for r in charges[:3]] == [429, 429, 200]
    # Retry-After: 0 falls back to exponential back-off (0.1 s, then 0.2 s) instead of retrying at once.
    assert charges[1].at - charges[0].at >= 0.09 and charges[2].at - charges[1].at >= 0.19


def test_retries_are_bounded_and_the_failure_is_one_line_with_nothing_loaded(sample_api, duckdb_settings):
    definition = rest_definition(payments_extract(sample_api.url), source_id="sample_payments")
    sample_api.fail_next("/events", 503, times=10)

    with pytest.raises(RestApiError) as failure:
        run_load(definition, duckdb_settings)

    assert len(sample_api.requests_to("/events")) == 4  # max_attempts
    message = str(failure.value)
    assert "\n" not in message and "/events" in message and "503" in message and "after 4 attempts" in message
    assert "nothing was loaded" in message
    assert not duckdb_settings.duckdb_path.exists() or DuckDBWarehouse(duckdb_settings).query(
        "select count(*) from information_schema.tables where table_schema = 'sample_api'")[0][0] == 0


def test_refused_credentials_fail_with_the_status_and_the_variable_name(sample_api, duckdb_settings, monkeypatch):
    definition = rest_definition(issues_extract(sample_api.url))
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")

    with pytest.raises(RestApiError) as failure:
        run_load(definition, duckdb_settings)

    message = str(failure.value)
    assert message == (f"sample_issues: GET {sample_api.url}/issues?per_page=10&since=2000-01-01T00%3A00%3A00Z "
                       f"answered 401 Unauthorized: the API refused the credentials in {TOKEN_ENV}; nothing was loaded")
    assert "not-the-token" not in message and TOKEN not in message
    assert len(sample_api.requests_to("/issues")) == 1  # a refusal is not retried


def test_a_refused_query_string_api_key_is_hidden_in_the_failure(sample_api, duckdb_settings, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    extract = payments_extract(sample_api.url)
    # A query-string API key under a name of the API's own: the URL in the message and the logs hide it.
    extract["client"] = {"base_url": sample_api.url,
                         "auth": {"type": "api_key", "name": "access_code", "location": "query",
                                  "api_key": {"env": "SAMPLE_QUERY_KEY"}}}
    monkeypatch.setenv("SAMPLE_QUERY_KEY", "wrong-key-123")
    definition = rest_definition(extract, source_id="sample_payments")

    with pytest.raises(RestApiError) as failure:
        run_load(definition, duckdb_settings)

    assert "access_code=***" in str(failure.value) and "wrong-key-123" not in str(failure.value)
    assert "wrong-key-123" not in caplog.text  # nor in any log line, dlt's included
    assert "SAMPLE_QUERY_KEY" in str(failure.value)


def test_a_missing_secret_is_named_before_any_request(sample_api, duckdb_settings, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(MissingSecret, match=f"extract.client.auth.token: environment variable {TOKEN_ENV} is not set"):
        run_load(rest_definition(issues_extract(sample_api.url)), duckdb_settings)
    assert sample_api.log == []


def test_the_request_budget_spaces_requests_per_host(sample_api, duckdb_settings):
    extract = payments_extract(sample_api.url)
    extract["http"]["requests_per_second"] = 20
    run_load(rest_definition(extract, source_id="sample_payments"), duckdb_settings)
    times = [r.at for r in sample_api.log]
    assert len(times) == 10
    # One request per 50 ms as sent; arrival times jitter a little, their span does not.
    assert times[-1] - times[0] >= 9 * 0.05 * 0.9


def test_raw_snapshot_and_replay(sample_api, duckdb_settings):
    definition = rest_definition(issues_extract(sample_api.url),
                                 staging={"raw_snapshot": True, "r2_prefix": "rest_api/sample"})
    first = run_load(definition, duckdb_settings)
    assert first.snapshot_url and first.snapshot_url.endswith(f"/{first.load_id}.complete.ndjson.gz")
    with gzip.open(first.snapshot_url, "rt") as file:
        lines = [json.loads(line) for line in file]
    assert {line["resource"] for line in lines} == {"issues", "issue_comments"}
    assert len(lines) == 45 + 90
    assert lines[0]["url"].startswith(f"{sample_api.url}/issues") and lines[0]["item"]["number"] == 1

    requests_before = len(sample_api.log)
    key = first.snapshot_url.split("raw_staging/", 1)[1]
    replay = run_load(definition, duckdb_settings, LoadRequest(from_snapshot=key))  # a complete run's: replaces
    assert len(sample_api.log) == requests_before  # a replay reads the snapshot, not the API
    assert replay.rows_by_table["issues"] == 45 and replay.rows_by_table["issue_comments"] == 90
    warehouse = DuckDBWarehouse(duckdb_settings)
    assert counts(warehouse, "sample_api", "issue_comments") == (90, 90)
    assert warehouse.query("select count(*) from sample_api.issue_comments where _issues_id is null")[0][0] == 0


def test_child_resources_keep_an_incremental_cursor_per_parent(sample_api, duckdb_settings):
    extract = issues_extract(sample_api.url)
    extract["resources"][0]["endpoint"].pop("incremental")  # every issue is read each run
    extract["resources"][1]["endpoint"]["incremental"] = {
        "cursor_path": "updated_at", "start_param": "since", "initial_value": "2000-01-01T00:00:00Z"}
    definition = rest_definition(extract)
    run_load(definition, duckdb_settings)
    first_run = len(sample_api.log)
    assert {r.query.get("since") for r in sample_api.log if r.path.endswith("/comments")} == {"2000-01-01T00:00:00Z"}

    sample_api.add_comment(3, EPOCH + dt.timedelta(days=2))
    # A new issue whose comments are older than the newest comment seen so far: a single cursor would skip them.
    sample_api.add_issue(comments=2, updated_at=EPOCH + dt.timedelta(hours=1))
    second = run_load(definition, duckdb_settings)

    since = {int(r.path.split("/")[2]): r.query.get("since") for r in sample_api.log[first_run:]
             if r.path.endswith("/comments")}
    assert since[1] == "2026-01-01T00:01:00Z" and since[3] == "2026-01-01T00:03:00Z"  # each issue's own latest
    assert since[45] == "2026-01-01T00:45:00Z"
    assert since[46] == "2000-01-01T00:00:00Z"  # a new parent starts from initial_value
    warehouse = DuckDBWarehouse(duckdb_settings)
    assert counts(warehouse, "sample_api", "issue_comments") == (93, 93)
    # `since` is inclusive, as GitHub's: each issue's comments at its cursor come again (merged, not duplicated),
    # with the new comment on issue 3 and the two old ones of issue 46.
    assert second.rows_by_table["issue_comments"] == 44 * 2 + 3 + 2
    assert "_rest_api_parent_cursor" not in warehouse.columns("sample_api", "issues")
    assert "_rest_api_parent_cursor" not in warehouse.columns("sample_api", "issue_comments")

    third_run = len(sample_api.log)
    run_load(definition, duckdb_settings)
    since = {int(r.path.split("/")[2]): r.query.get("since") for r in sample_api.log[third_run:]
             if r.path.endswith("/comments")}
    assert since[3] == "2026-01-03T00:00:00Z" and since[46] == "2026-01-01T01:00:00Z"


def test_a_limited_run_reads_only_the_pages_it_needs_and_merges(sample_api, duckdb_settings):
    definition = rest_definition(issues_extract(sample_api.url))
    result = run_load(definition, duckdb_settings, LoadRequest(limit=15))
    assert result.rows_by_table["issues"] == 15 and result.rows_by_table["issue_comments"] == 30
    assert len([r for r in sample_api.log if r.path == "/issues"]) == 2  # 2 pages of 10, not 5
    assert result.write_disposition == "merge"


def test_a_partition_run_reads_its_window_and_leaves_the_cursor_alone(sample_api, duckdb_settings):
    for day in (1, 2):  # five charges on 2026-01-02 and on 2026-01-03, after the 35 of 2026-01-01
        for minute in range(5):
            sample_api.add_charge(updated_at=EPOCH + dt.timedelta(days=day, minutes=minute))
    extract = payments_extract(sample_api.url)
    extract["resources"] = extract["resources"][:1]
    extract["partitions"] = {"step": "day", "start": "2026-01-01"}
    definition = rest_definition(extract, source_id="sample_payments")
    day_two = (EPOCH + dt.timedelta(days=1), EPOCH + dt.timedelta(days=2))

    windowed = run_load(definition, duckdb_settings, LoadRequest(window=day_two))

    assert windowed.rows_by_table["charges"] == 5
    assert [r.query.get("updated_since") for r in sample_api.log] == ["2026-01-02T00:00:00Z"]
    assert windowed.write_disposition == "merge"
    # A normal run afterwards still starts from initial_value: the backfill did not move the cursor.
    before = len(sample_api.log)
    whole = run_load(definition, duckdb_settings)
    assert sample_api.log[before].query.get("updated_since") == "2000-01-01T00:00:00Z"
    assert counts(DuckDBWarehouse(duckdb_settings), "sample_api", "charges") == (45, 45)
    assert whole.rows_by_table["charges"] == 45


def test_a_window_is_refused_without_partitions(sample_api, duckdb_settings):
    with pytest.raises(ValueError, match="partition: this rest_api source has no partitions"):
        run_load(rest_definition(issues_extract(sample_api.url)), duckdb_settings,
                 LoadRequest(window=(EPOCH, EPOCH + dt.timedelta(days=1))))
