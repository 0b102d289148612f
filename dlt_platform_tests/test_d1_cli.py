"""`dlt-platform d1 tables|sample|profile` over the loopback D1 REST API: what a user sees before loading, and
D1's errors as one line."""

import json

import pytest
from typer.testing import CliRunner

from dlt_platform.cli import app

from .d1_fixtures import ACCOUNT_ID, API_TOKEN, DATABASE_ID, USER_INSERT, d1_definition, user_row


@pytest.fixture
def cli_env(tmp_path, d1_api, d1_state, monkeypatch):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(i) for i in range(1, 13)])
    definition = d1_definition([{"name": "users", "cursor": "updated_at", "columns": {"profile": "json"}}])
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps({"sources": [definition.model_dump(mode="json", exclude_none=True)]}))
    monkeypatch.chdir(tmp_path)
    for name, value in {"DLT_PLATFORM_CONFIG": str(sources), "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
                        "CLOUDFLARE_API_BASE_URL": d1_api.base_url, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
                        "CLOUDFLARE_API_TOKEN": API_TOKEN, "COLUMNS": "200"}.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_tables_lists_each_table_with_its_key_and_what_the_source_loads(cli_env):
    result = run("d1", "tables", "--source-id", "app_d1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"table": "events", "columns": 2, "primary_key": "rowid", "loaded_as": ""},
        {"table": "users", "columns": 9, "primary_key": "id", "loaded_as": "users"},
    ]


def test_sample_prints_the_first_rows_in_key_order_shaped(cli_env):
    result = run("d1", "sample", "--source-id", "app_d1", "--limit", "3", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["users"]
    assert [row["id"] for row in rows] == [1, 2, 3]
    assert rows[0]["profile"] == {"plan": "free", "seats": 1} and rows[0]["avatar"] == "AQD/"


def test_profile_shows_declared_types_and_what_they_load_as(cli_env):
    result = run("d1", "profile", "--source-id", "app_d1", "--json")
    assert result.exit_code == 0, result.output
    columns = {c["column"]: c for c in json.loads(result.output)["users"]["columns"]}
    assert columns["balance"]["affinity"] == "NUMERIC" and columns["balance"]["loads_as"] == "decimal"
    assert columns["signed_up"]["loads_as"] == "text" and columns["profile"]["loads_as"] == "json"
    assert columns["score"]["values"] == "float 12" and columns["avatar"]["nulls"] == "0/12"


def test_a_refused_token_and_a_wrong_source_are_one_line(cli_env, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-token-value")
    result = run("d1", "tables", "--source-id", "app_d1")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: D1 HTTP 403: Authentication error (code 10000) (CLOUDFLARE_API_TOKEN)"]
    assert "wrong-token-value" not in result.output
    result = run("d1", "sample", "--source-id", "nope")
    assert result.exit_code == 1 and "unknown source 'nope'" in result.output
