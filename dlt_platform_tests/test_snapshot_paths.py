"""Snapshot paths stay inside the snapshot store: `from_snapshot` replays only a snapshot of the source under its
own r2_prefix, and writing a snapshot can never leave the data folder. With real files and a real HTTP server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import pytest
from typer.testing import CliRunner

from dlt_platform.cli import app
from dlt_platform.load_request import LoadRequest
from dlt_platform.loads import run_load
from dlt_platform.snapshots import SnapshotWriter

from .conftest import ACCOUNT_ID, API_TOKEN, NAMESPACE_ID, make_definition, query
from .snapshot_fixtures import snapshot_http_server, write_snapshot  # noqa: F401 - fixture

PREFIX = "cloudflare_kv/orders"


@pytest.fixture
def rest_settings(settings):
    return dataclasses.replace(settings, kv_transport_override="rest")


@pytest.fixture
def loaded(kv_state, rest_settings):
    """A source with three orders loaded and its own snapshot of them; returns (definition, snapshot key)."""
    definition = make_definition(staging={"raw_snapshot": True, "r2_prefix": PREFIX})
    for number in range(3):
        kv_state.namespaces[NAMESPACE_ID].put(f"order:{number}", json.dumps({"n": number}))
    result = run_load(definition, rest_settings)
    key = result.snapshot_url.removeprefix(rest_settings.snapshot_root + "/")
    assert key.startswith(f"{PREFIX}/") and key.endswith(".ndjson.gz")
    return definition, key


def keys_in_table(settings) -> list[str]:
    return [row[0] for row in query(settings, "select cf_kv_key from source_test.orders_kv order by 1")]


def test_from_snapshot_refuses_anything_but_a_snapshot_of_the_source(loaded, rest_settings, tmp_path,
                                                                    snapshot_http_server):  # noqa: F811
    definition, own_key = loaded
    root = rest_settings.data_dir / "raw_staging"
    outside = write_snapshot(tmp_path / "outside" / "2026-11-26" / "1.ndjson.gz", ["planted"])
    # Real files the old, permissive reading would have loaded.
    write_snapshot(rest_settings.data_dir / "outside" / "1.ndjson.gz", ["planted"])
    write_snapshot(root / "cloudflare_kv" / "leads" / "2026-11-26" / "1.ndjson.gz", ["planted"])
    refused = {
        str(outside): "not a URL or an absolute path",
        outside.as_uri(): "not a URL or an absolute path",
        f"{snapshot_http_server.url}/{PREFIX}/2026-11-26/1.ndjson.gz": "not a URL or an absolute path",
        f"s3://another-bucket/{PREFIX}/2026-11-26/1.ndjson.gz": "not a URL or an absolute path",
        f"{PREFIX}/../../../outside/1.ndjson.gz": "'..'",
        "cloudflare_kv/leads/2026-11-26/1.ndjson.gz": f"a snapshot of test_orders: '{PREFIX}/",
        f"{PREFIX}/2026-11-26/../../leads/2026-11-26/1.ndjson.gz": "'..'",
    }
    for value, reason in refused.items():
        with pytest.raises(ValueError, match="from_snapshot") as error:
            run_load(definition, rest_settings, LoadRequest(from_snapshot=value))
        assert reason in str(error.value), (value, str(error.value))
    with pytest.raises(ValueError) as error:
        run_load(definition, rest_settings, LoadRequest(
            from_snapshot=snapshot_http_server.url.replace("//", "//reader:s3cret-pass@") + "/x.ndjson.gz?sig=abc"))
    assert "s3cret-pass" not in str(error.value) and "sig=abc" not in str(error.value)
    assert snapshot_http_server.requests == [], "a from_snapshot URL must never be fetched"
    assert keys_in_table(rest_settings) == ["order:0", "order:1", "order:2"]

    # The source's own snapshot replays, by object key or by the URL the load printed.
    assert run_load(definition, rest_settings, LoadRequest(from_snapshot=own_key)).rows_by_table == {"orders_kv": 3}
    printed = f"{rest_settings.snapshot_root}/{own_key}"
    assert run_load(definition, rest_settings, LoadRequest(from_snapshot=printed)).rows_by_table == {"orders_kv": 3}


def test_a_source_without_snapshots_refuses_from_snapshot(rest_settings):
    with pytest.raises(ValueError, match="from_snapshot: .*staging.r2_prefix"):
        run_load(make_definition(), rest_settings, LoadRequest(from_snapshot=f"{PREFIX}/2026-11-26/1.ndjson.gz"))


def test_the_cli_refuses_a_url_in_one_line_without_fetching_it(loaded, rest_settings, monkeypatch, tmp_path,
                                                              kv_api, snapshot_http_server):  # noqa: F811
    definition, _ = loaded
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps({"sources": [definition.model_dump(mode="json")]}))
    for name, value in {"DLT_PLATFORM_CONFIG": str(sources), "DLT_PLATFORM_DATA_DIR": str(rest_settings.data_dir),
                        "DLT_PLATFORM_DESTINATION": "duckdb", "DLT_PLATFORM_KV_TRANSPORT": "rest",
                        "CLOUDFLARE_API_BASE_URL": kv_api.base_url, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
                        "CLOUDFLARE_API_TOKEN": API_TOKEN, "COLUMNS": "300"}.items():
        monkeypatch.setenv(name, value)
    url = f"{snapshot_http_server.url}/{PREFIX}/2026-11-26/1.ndjson.gz"
    result = CliRunner().invoke(app, ["load", "--source-id", "test_orders", "--from-snapshot", url])
    assert result.exit_code == 1
    assert result.output.startswith("error: from_snapshot:") and len(result.output.strip().splitlines()) == 1
    assert snapshot_http_server.requests == []
    assert keys_in_table(rest_settings) == ["order:0", "order:1", "order:2"]


def test_a_bad_prefix_cannot_write_outside_the_data_folder(rest_settings, tmp_path):
    for prefix in ("../../outside", "cloudflare_kv/../../../outside", "cloudflare_kv/./orders", "file://outside"):
        with pytest.raises(ValueError, match="staging.r2_prefix"):
            SnapshotWriter(rest_settings, prefix)
    assert not (tmp_path / "outside").exists() and not (rest_settings.data_dir / "outside").exists()


def test_a_symlink_out_of_the_snapshot_folder_is_not_followed(kv_state, rest_settings, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = rest_settings.data_dir / "raw_staging"
    root.mkdir(parents=True)
    os.symlink(outside, root / "cloudflare_kv")
    definition = make_definition(staging={"raw_snapshot": True, "r2_prefix": PREFIX})
    kv_state.namespaces[NAMESPACE_ID].put("order:0", json.dumps({"n": 0}))
    with pytest.raises(Exception, match="staging.r2_prefix: .* outside the snapshot folder"):
        run_load(definition, rest_settings)
    assert list(outside.rglob("*")) == []
    assert list((rest_settings.data_dir / "tmp").iterdir()) == [], "the extracted temp file is removed"


def test_snapshot_keys_carry_the_date_and_load_id(loaded):
    _, key = loaded
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert key.startswith(f"{PREFIX}/{today}/")
