import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlt_platform.cli import app

from .conftest import ACCOUNT_ID, API_TOKEN, NAMESPACE_ID, make_definition, query


@pytest.fixture
def cli_env(tmp_path: Path, kv_state, kv_api, monkeypatch):
    """A sources file with one REST source against the loopback API, and the env the CLI reads."""
    definition = make_definition(staging={"raw_snapshot": True, "r2_prefix": "cloudflare_kv/orders"})
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps({"sources": [definition.model_dump(mode="json"),
                                               make_definition(source_id="off", enabled=False).model_dump(mode="json")]}))
    monkeypatch.chdir(tmp_path)
    env = {"DLT_PLATFORM_CONFIG": str(sources), "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
           "DLT_PLATFORM_DESTINATION": "duckdb", "DLT_PLATFORM_KV_TRANSPORT": "rest",
           "CLOUDFLARE_API_BASE_URL": kv_api.base_url, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
           "CLOUDFLARE_API_TOKEN": API_TOKEN, "COLUMNS": "200"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace = kv_state.namespaces[NAMESPACE_ID]
    for number in range(30):
        namespace.put(f"order:{number:03d}", json.dumps({"order_id": number, "status": "paid", "items": [{"sku": "A"}]}))
    namespace.put("note", "plain text")
    return tmp_path


def run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_sources_and_keys(cli_env):
    result = run("sources")
    assert result.exit_code == 0 and "test_orders" in result.output and "off" in result.output
    result = run("keys", "--source-id", "test_orders", "--limit", "3")
    assert result.exit_code == 0
    assert result.output.split() == ["note", "order:000", "order:001"]


def test_profile_reports_presence_types_and_non_json_share(cli_env):
    result = run("profile", "--source-id", "test_orders", "--limit", "100")
    assert result.exit_code == 0, result.output
    assert "31 records sampled" in result.output
    assert "30/31" in result.output and "int 30" in result.output and "array 30" in result.output
    assert "non-JSON values: 1/31 (3.2%)" in result.output


def test_sample_prints_rows_without_loading(cli_env):
    result = run("sample", "--source-id", "test_orders", "--limit", "2")
    assert result.exit_code == 0
    assert '"cf_kv_key": "note"' in result.output and '"cf_kv_value_is_json": false' in result.output
    assert not (cli_env / "data" / "warehouse.duckdb").exists()


def test_load_prints_rows_per_table_and_snapshot(cli_env):
    result = run("load", "--source-id", "test_orders")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert ["table", "rows"] in lines and ["orders_kv", "31"] in lines and ["orders_kv__items", "30"] in lines
    assert "raw snapshot:" in result.output


def test_load_in_key_batches_and_replay_a_snapshot(cli_env, kv_state):
    keys_file = cli_env / "keys.txt"
    keys_file.write_text("\n".join(f"order:{n:03d}" for n in range(25)) + "\n")
    result = run("load", "--source-id", "test_orders", "--keys-file", str(keys_file), "--batch-size", "10",
                 "--skip-batches", "1")
    assert result.exit_code == 0, result.output
    assert "25 keys in 3 batches of 10; loading 2 (skipping 1)" in result.output
    settings = dataclasses.replace(make_settings(cli_env))
    assert query(settings, "select count(*) from source_test.orders_kv") == [(15,)]
    snapshots = sorted((cli_env / "data" / "raw_staging").rglob("*.ndjson.gz"))
    kv_state.namespaces[NAMESPACE_ID].entries.clear()
    # The snapshot of a partial run (a key batch) replays as one: it merges its 5 records and keeps the other 10...
    result = run("load", "--source-id", "test_orders", "--from-snapshot", str(snapshots[-1]))
    assert result.exit_code == 0, result.output
    assert "(merge)" in result.output
    assert query(settings, "select count(*), count(distinct cf_kv_key) from source_test.orders_kv") == [(15, 15)]
    # ...unless asked to restore exactly the snapshot.
    result = run("load", "--source-id", "test_orders", "--full-refresh", "--from-snapshot", str(snapshots[-1]))
    assert result.exit_code == 0, result.output
    assert "(replace)" in result.output
    assert query(settings, "select count(*) from source_test.orders_kv") == [(5,)]
    result = run("load", "--source-id", "test_orders", "--full-refresh", "--limit", "3")
    assert result.exit_code == 1 and "error: full_refresh: cannot be combined with limit or keys" in result.output
    assert query(settings, "select count(*) from source_test.orders_kv") == [(5,)]


def make_settings(root: Path):
    from dlt_platform.settings import Settings

    return Settings(data_dir=root / "data")


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["load", "--source-id", "nope"], {}, "error: source_id: unknown source 'nope'"),
        (["keys", "--source-id", "test_orders"], {"CLOUDFLARE_API_TOKEN": ""}, "error: CLOUDFLARE_API_TOKEN is not set"),
        (["keys", "--source-id", "test_orders"], {"CLOUDFLARE_API_TOKEN": "bad-token-123"},
         "error: Cloudflare API HTTP 403: Authentication error (code 10000) (CLOUDFLARE_API_TOKEN)"),
        (["load"], {}, "error: give exactly one of --source-id or --all"),
    ],
)
def test_errors_are_one_line_with_exit_code_1(cli_env, monkeypatch, args, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.output.strip() == message or result.output.strip().startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "bad-token-123" not in result.output


def test_listings_keep_ids_whole_when_narrow_and_print_json_for_scripts(cli_env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "20")
    lines = run("sources").output.splitlines()
    assert lines[0].split() == ["source_id", "type", "enabled", "schedule", "destination", "disposition", "reads",
                                "transport"]
    assert [line.split()[0] for line in lines[1:]] == ["test_orders", "off"]
    assert "…" not in "".join(lines)
    sources = json.loads(run("sources", "--json").output)
    assert [source["source_id"] for source in sources] == ["test_orders", "off"]
    assert sources[0]["extract"]["namespace_id"] == NAMESPACE_ID
    keys = json.loads(run("keys", "--source-id", "test_orders", "--limit", "2", "--json").output)
    assert keys == [{"key": "note", "metadata": None, "expiration": None},
                    {"key": "order:000", "metadata": None, "expiration": None}]
    namespaces = json.loads(run("namespaces", "--json").output)
    assert {"id": NAMESPACE_ID, "title": "ORDERS_KV"} in namespaces
    profile = json.loads(run("profile", "--source-id", "test_orders", "--json").output)
    assert (profile["records"], profile["non_json"]) == (31, 1)
    assert {"field": "order_id", "present": 30, "types": {"int": 30}, "example": 0} in profile["fields"]


def test_without_credentials_or_a_local_stack_the_missing_variable_is_named(cli_env, monkeypatch, tmp_path):
    for name in ("CLOUDFLARE_ACCOUNT_ID", "DLT_PLATFORM_KV_TRANSPORT"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("DLT_PLATFORM_STATE_DIR", str(tmp_path / "no-stack"))
    result = CliRunner().invoke(app, ["keys", "--source-id", "test_orders"])
    assert result.exit_code == 1 and result.output.strip() == "error: CLOUDFLARE_ACCOUNT_ID is not set"


def test_the_run_summary_says_why_a_run_failed(capsys):
    from dlt_platform.cli.runs import print_runs

    print_runs([{"source_id": "cloudflare_kv_orders", "run_id": "run_1", "status": "succeeded", "tables": {"orders_kv": 3},
                 "trigger": "api", "message": None},
                {"source_id": "cloudflare_kv_leads", "run_id": "run_2", "status": "failed", "tables": None,
                 "trigger": "api", "message": "Cloudflare API HTTP 403: Authentication error (code 10000)"}])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "cloudflare_kv_leads run_2 failed: Cloudflare API HTTP 403: Authentication error (code 10000)"
    assert not any(line.startswith("cloudflare_kv_orders run_1") for line in lines)


def test_the_command_line_starts_without_dlt_duckdb_or_arrow():
    """Every command, `--help` and `serve` included, starts without importing what only a load needs (about 1 s
    of CPU a start); a load imports it when it runs."""
    import subprocess
    import sys

    heavy = ("dlt", "duckdb", "pyarrow", "pandas")
    probe = f"import sys, dlt_platform.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", f"imported at start: {result.stdout.strip()}"
