"""The CLI with a rest_api source: listed, loaded with rows per table, refused credentials as one line."""

import json

import pytest
from typer.testing import CliRunner

from dlt_platform.cli import app

from .rest_api_fixtures import TOKEN_ENV, issues_extract, rest_definition, sample_api  # noqa: F401 (fixture)


@pytest.fixture
def cli_env(tmp_path, sample_api, monkeypatch):
    definition = rest_definition(issues_extract(sample_api.url), staging={"raw_snapshot": True,
                                                                          "r2_prefix": "rest_api/issues"})
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps({"sources": [definition.model_dump(mode="json", by_alias=True, exclude_none=True)]}))
    monkeypatch.chdir(tmp_path)
    for name, value in {"DLT_PLATFORM_CONFIG": str(sources), "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
                        "DLT_PLATFORM_DESTINATION": "duckdb", "COLUMNS": "200"}.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_sources_lists_the_tables_and_the_host(cli_env, sample_api):
    result = run("sources")
    assert result.exit_code == 0, result.output
    assert "duckdb:sample_api.{issues,issue_comments}" in result.output
    assert sample_api.url.removeprefix("http://") in result.output


def test_load_prints_rows_per_table_and_the_snapshot(cli_env):
    result = run("load", "--source-id", "sample_issues")
    assert result.exit_code == 0, result.output
    assert "issues" in result.output and "45" in result.output and "issue_comments" in result.output
    assert "90" in result.output and "raw snapshot:" in result.output


def test_refused_credentials_are_one_line_naming_the_variable(cli_env, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-value")
    result = run("load", "--source-id", "sample_issues")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: sample_issues: GET "), result.output
    assert errors[0].endswith(f"answered 401 Unauthorized: the API refused the credentials in {TOKEN_ENV}; nothing "
                              "was loaded")
    assert "wrong-token-value" not in result.output


def test_kv_commands_refuse_a_rest_api_source(cli_env):
    result = run("keys", "--source-id", "sample_issues")
    assert result.exit_code == 1
    assert "sample_issues is a rest_api source; `keys` reads KV namespaces" in result.output
