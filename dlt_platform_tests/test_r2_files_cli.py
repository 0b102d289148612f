"""The CLI with an r2_files source: `r2 files` lists each table's objects and what its next run reads, `r2 sample`
prints typed rows without loading, `load` loads, and a source of another type is one line naming the option."""

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from dlt_platform.cli import app

from .r2_files_fixtures import (
    BUCKET,
    R2_KEY_ID,
    R2_SECRET,
    http_request,
    latest_modified,
    logpush_batch,
    put_newer_than,
    r2_definition,
)

DAY = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
LOGPUSH = {"type": "logpush", "dataset": "http_requests", "prefix": "logpush/http_requests", "timestamp_format": "unix"}


@pytest.fixture
def cli_env(tmp_path, s3, s3_server, monkeypatch):
    definition = r2_definition([LOGPUSH])
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps({"sources": [definition.model_dump(mode="json", exclude_none=True)]}))
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DLT_PLATFORM_CONFIG": str(sources),
        "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "DLT_PLATFORM_DESTINATION": "duckdb",
        "COLUMNS": "250",
        "DLT_R2_ENDPOINT_URL": s3_server,
        "DLT_R2_ACCESS_KEY_ID": R2_KEY_ID,
        "DLT_R2_SECRET_ACCESS_KEY": R2_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    key, body = logpush_batch([http_request(n, DAY, "unix") for n in range(12)], DAY)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_files_says_what_the_next_run_reads_before_and_after_a_load(cli_env, s3):
    before = run("r2", "files", "--source-id", "edge_logs", "--json")
    assert before.exit_code == 0, before.output
    assert [(row["key"], row["next_run"]) for row in json.loads(before.output)] == [(cli_env, "reads")]

    loaded = run("load", "--source-id", "edge_logs")
    assert loaded.exit_code == 0, loaded.output
    key, body = logpush_batch([http_request(n, DAY, "unix") for n in range(12, 15)], DAY + dt.timedelta(minutes=1))
    put_newer_than(s3, key, body, latest_modified(s3))

    after = json.loads(run("r2", "files", "--source-id", "edge_logs", "--json").output)
    assert [(row["key"], row["next_run"]) for row in after] == [(cli_env, "read"), (key, "reads")]


def test_sample_prints_typed_rows_and_loads_nothing(cli_env, tmp_path):
    result = run("r2", "sample", "--source-id", "edge_logs", "--limit", "3")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["http_requests"]
    assert [row["RayID"] for row in rows] == [f"{n:016x}" for n in range(3)]
    assert rows[0]["EdgeStartTimestamp"] == str(DAY)  # typed: a datetime, not Unix seconds
    assert not (tmp_path / "data" / "warehouse.duckdb").exists()


def test_an_unknown_table_is_one_line_naming_the_option(cli_env):
    result = run("r2", "files", "--source-id", "edge_logs", "--table", "dns_logs")
    assert result.exit_code == 1
    assert result.output.strip() == "error: --table: edge_logs has no table 'dns_logs' (tables: http_requests)"
