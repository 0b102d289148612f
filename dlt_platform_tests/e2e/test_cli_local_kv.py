"""A newcomer's first commands right after `dlt-platform up`: no Cloudflare credentials, the local stack up."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from dlt_platform.cli import app
from dlt_platform.config import load_sources_file
from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.settings import PROJECT_ROOT


@pytest.fixture
def newcomer(stack, monkeypatch, tmp_path):
    """The environment of a fresh checkout: no credentials, no orchestrator URL, the stack's state folder."""
    monkeypatch.chdir(tmp_path)  # no .env to pick up
    for name in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "DLT_PLATFORM_KV_TRANSPORT", "DLT_ORCHESTRATOR_URL",
                 "DLT_INTERNAL_TOKEN", "DLT_PLATFORM_DESTINATION", "DLT_PLATFORM_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DLT_PLATFORM_STATE_DIR", str(stack.paths.state_dir))
    monkeypatch.setenv("DLT_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLT_PLATFORM_DESTINATION", "duckdb")
    monkeypatch.setenv("COLUMNS", "40")  # narrow: ids must still come out whole
    return stack


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def seeded_orders() -> list:
    return sample_namespaces(dt.datetime.now(dt.UTC).date())["ORDERS_KV"]


def test_kv_commands_use_the_local_worker_and_say_so_in_one_line(newcomer):
    result = run("keys", "--source-id", "cloudflare_kv_orders", "--limit", "3")
    assert result.stderr.splitlines() == [f"no Cloudflare credentials: reading KV through the local Worker at "
                                          f"{newcomer.worker_url} ({newcomer.paths.worker_env})"]
    assert result.stdout.split() == sorted(entry.key for entry in seeded_orders())[:3]

    listed = json.loads(run("keys", "--source-id", "cloudflare_kv_orders", "--limit", "2", "--json").stdout)
    assert [entry["key"] for entry in listed] == sorted(entry.key for entry in seeded_orders())[:2]
    assert listed[0]["metadata"] == {"schema": 2}

    titles = {namespace["title"] for namespace in json.loads(run("namespaces", "--json").stdout)}
    assert titles == set(sample_namespaces(dt.date.today()))

    rows = json.loads(run("sample", "--source-id", "cloudflare_kv_orders", "--limit", "2", "--json").stdout)
    assert [row["cf_kv_key"] for row in rows] == sorted(entry.key for entry in seeded_orders())[:2]

    profile = json.loads(run("profile", "--source-id", "cloudflare_kv_orders", "--limit", "50", "--json").stdout)
    assert profile["records"] == 50 and profile["non_json"] == 0
    order_id = next(field for field in profile["fields"] if field["field"] == "order_id")
    assert order_id["present"] == 50 and order_id["types"] == {"string": 50}

    loaded = run("load", "--source-id", "cloudflare_kv_orders", "--limit", "5")
    assert "reading KV through the local Worker" in loaded.stderr
    assert ["orders_kv", "5"] in [line.split() for line in loaded.stdout.splitlines()]


def test_listings_keep_source_ids_whole_in_a_narrow_terminal_and_piped(newcomer):
    result = run("sources")
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] == "source_id"
    configured = [definition.source_id for definition in load_sources_file(PROJECT_ROOT / "config" / "sources.json")]
    assert [line.split()[0] for line in lines[1:]] == configured
    assert "…" not in result.stdout
    assert [source["source_id"] for source in json.loads(run("sources", "--json").stdout)] == configured


def test_an_explicit_transport_is_obeyed_even_with_the_stack_up(newcomer, monkeypatch):
    monkeypatch.setenv("DLT_PLATFORM_KV_TRANSPORT", "rest")
    result = CliRunner().invoke(app, ["keys", "--source-id", "cloudflare_kv_orders"])
    assert result.exit_code == 1 and result.output.strip() == "error: CLOUDFLARE_ACCOUNT_ID is not set"
