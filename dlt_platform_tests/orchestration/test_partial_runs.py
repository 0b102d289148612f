"""Partial runs never shrink a table: after a full load of a `replace` source, every partial path (CLI --limit,
--keys-file, key batches, a launchpad materialization with limit and keys, a Worker-style run request) merges
on cf_kv_key, so the parent and child tables keep every row, once, and merged keys get their current values."""

import json

import dagster as dg
import pytest
from typer.testing import CliRunner

from dlt_platform.cli import app
from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform_tests.orchestration.conftest import NAMESPACE_IDS, SAMPLE_COUNTS, read_table
from dlt_platform_tests.orchestration.dagster_runs import ORDERS, launch

SOURCE_ID = "cloudflare_kv_orders"


def table_state(settings) -> dict:
    """What users see of the orders: keys, child rows per key, duplicates and orphans."""
    keys = [row[0] for row in read_table(settings, "source_cloudflare", "orders_kv", "cf_kv_key")]
    children = read_table(settings, "source_cloudflare", "orders_kv__items",
                          "(select p.cf_kv_key from source_cloudflare.orders_kv p where p._dlt_id = _dlt_root_id), "
                          "sku, quantity")
    return {"keys": sorted(keys), "duplicate_keys": len(keys) - len(set(keys)),
            "orphan_items": sum(1 for key, _, _ in children if key is None),
            "items": sorted((key or "", sku, quantity) for key, sku, quantity in children)}


def cli(*args: str):
    result = CliRunner().invoke(app, ["load", "--source-id", SOURCE_ID, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def refreshed_order(kv_server):
    """The first listed order with changed items while the test runs (the KV server is shared by the session)."""
    namespace = kv_server.state.namespaces[NAMESPACE_IDS["ORDERS_KV"]]
    key = namespace.keys()[0][0]
    value, metadata, expiration = namespace.entries[key]
    yield namespace, key
    namespace.put(key, value, metadata, expiration)


def test_every_partial_path_keeps_every_row_of_a_replace_source(platform_env, sample_definitions, instance,  # noqa: F811
                                                                 workspace, refreshed_order, tmp_path):  # noqa: F811
    settings = platform_env
    assert next(d for d in sample_definitions if d.source_id == SOURCE_ID).destination.write_disposition == "replace"
    definitions = build_platform_definitions(sample_definitions, settings)
    job = definitions.get_repository_def().get_job("__ASSET_JOB").get_subset(asset_selection={ORDERS})
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success  # the full (replace) load
    full = table_state(settings)
    assert len(full["keys"]) == SAMPLE_COUNTS["ORDERS_KV"] and full["items"] and not full["orphan_items"]

    # A merged key gets its current value: its child rows are replaced, nobody else's are touched.
    namespace, first_key = refreshed_order
    value = json.loads(namespace.entries[first_key][0])
    namespace.put(first_key, json.dumps({**value, "items": [{"sku": "REFRESHED", "quantity": 9, "unit_price": 1.0}]}),
                  {"schema": 2})
    expected_items = sorted([item for item in full["items"] if item[0] != first_key] + [(first_key, "REFRESHED", 9)])

    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("\n".join(full["keys"][:12]) + "\n")
    cli("--limit", "5")
    cli("--keys-file", str(keys_file))
    cli("--keys-file", str(keys_file), "--batch-size", "5", "--skip-batches", "1", "--max-batches", "2")
    config = {"ops": {SOURCE_ID: {"config": {"limit": 3}}}}
    limited = dg.DagsterInstance.ephemeral()
    assert job.execute_in_process(instance=limited, run_config=config).success
    metadata = limited.get_latest_materialization_event(ORDERS).asset_materialization.metadata
    assert metadata["write_disposition"].value == "merge" and metadata["rows_by_table"].value["orders_kv"] == 3
    config = {"ops": {SOURCE_ID: {"config": {"keys": full["keys"][:4]}}}}
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), run_config=config).success
    # What the Worker launches for a run request (executionParams in worker/src/dagster.ts).
    worker_run = launch(instance, workspace, ORDERS,
                        {"dlt_platform/run_id": "run_partial", "dlt_platform/source_id": SOURCE_ID,
                         "dlt_platform/trigger": "api"},
                        {"ops": {SOURCE_ID: {"config": {"limit": 2, "keys": full["keys"][5:9]}}}})
    assert worker_run.status == dg.DagsterRunStatus.SUCCESS

    after = table_state(settings)
    assert after["keys"] == full["keys"]
    assert after["duplicate_keys"] == 0 and after["orphan_items"] == 0
    assert after["items"] == expected_items
