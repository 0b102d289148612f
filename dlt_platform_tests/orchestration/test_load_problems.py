"""A definition Python cannot build (an older Worker accepted it, D1 was edited by hand) leaves every other
source loadable; Dagster shows it and the Worker is told which sources failed and why."""

from __future__ import annotations

import copy
import json

import dagster as dg

from dlt_platform.contract import SOURCE_VERSION_METADATA
from dlt_platform.definitions import defs
from dlt_platform.orchestration.code_location import INVALID_GROUP
from dlt_platform.orchestration.source_catalog import SourceCatalog
from dlt_platform_tests.orchestration.conftest import INTERNAL_TOKEN

ORDERS = dg.AssetKey(["source_cloudflare", "orders_kv"])


def worker_document(platform_env) -> dict:
    document = json.loads(platform_env.config_path.read_text())
    document["versions"] = {source["source_id"]: 3 for source in document["sources"]}
    return document


def use_worker(monkeypatch, worker_api, document: dict) -> None:
    worker_api.ledger.sources_document = document
    monkeypatch.setenv("DLT_ORCHESTRATOR_URL", worker_api.base_url)
    monkeypatch.setenv("DLT_INTERNAL_TOKEN", INTERNAL_TOKEN)


def test_bad_definitions_are_left_out_shown_and_reported_while_the_rest_loads(platform_env, worker_api, monkeypatch):
    document = worker_document(platform_env)
    # The KV sample sources; the entries added below are numbered after them.
    document["sources"] = [source for source in document["sources"] if source["source_type"] == "cloudflare_kv"]
    orders = document["sources"][0]
    traversing = {**copy.deepcopy(orders), "source_id": "escaping_prefix",
                  "destination": {**orders["destination"], "table": "escaping_kv"},
                  "staging": {"raw_snapshot": True, "r2_prefix": "../../../../tmp/x"}}
    same_table = {**copy.deepcopy(orders), "source_id": "orders_again", "staging": {"raw_snapshot": False}}
    nameless = {"source_type": "cloudflare_kv"}
    # Would land on the placeholder key of orders_again.
    reserved = {**copy.deepcopy(orders), "source_id": "reserved_dataset", "staging": {"raw_snapshot": False},
                "destination": {**orders["destination"], "dataset": INVALID_GROUP, "table": "orders_again"}}
    document["sources"] += [traversing, same_table, nameless, reserved]
    document["versions"].update(escaping_prefix=2, orders_again=5)
    use_worker(monkeypatch, worker_api, document)

    definitions = defs()
    repository = definitions.get_repository_def()  # what Dagster does when it loads the location
    graph = definitions.resolve_asset_graph()
    assert {ORDERS, dg.AssetKey(["source_cloudflare", "leads_kv"]), dg.AssetKey(["source_cloudflare", "vendor_kv"])
            } == set(graph.materializable_asset_keys)
    assert repository.has_job("load_cloudflare_kv_orders") and not repository.has_job("load_orders_again")

    specs = {spec.key: spec for spec in definitions.resolve_all_asset_specs()}
    placeholders = {key: spec for key, spec in specs.items() if spec.group_name == INVALID_GROUP}
    nameless_entry = f"entry_{document['sources'].index(nameless)}"
    assert set(placeholders) == {dg.AssetKey([INVALID_GROUP, name]) for name in ("escaping_prefix", "orders_again",
                                                                                  nameless_entry, "reserved_dataset")}
    escaping = placeholders[dg.AssetKey([INVALID_GROUP, "escaping_prefix"])]
    assert "staging.r2_prefix" in escaping.description and escaping.metadata["source_version"] == 2
    assert "already loaded by source cloudflare_kv_orders" in placeholders[
        dg.AssetKey([INVALID_GROUP, "orders_again"])].description
    assert specs[ORDERS].metadata[SOURCE_VERSION_METADATA] == dg.MetadataValue.int(3)

    reported = {error["source_id"]: error for error in worker_api.ledger.load_errors}
    # the nameless entry belongs to no source
    assert set(reported) == {"escaping_prefix", "orders_again", "reserved_dataset"}
    assert reported["escaping_prefix"]["version"] == 2
    escaping_index = document["sources"].index(traversing)
    assert reported["escaping_prefix"]["message"].startswith(
        f"sources[{escaping_index}].staging.r2_prefix: must be a relative path")
    assert reported["orders_again"]["message"] == ("ValueError: table source_cloudflare.orders_kv is already loaded "
                                                   "by source cloudflare_kv_orders")

    # Fixed in D1: the next load reports nothing, which clears the Worker's record.
    use_worker(monkeypatch, worker_api, worker_document(platform_env))
    assert not [spec for spec in defs().resolve_all_asset_specs() if spec.group_name == INVALID_GROUP]
    assert worker_api.ledger.load_errors == []


def test_the_location_loads_when_the_worker_cannot_take_the_report(platform_env, worker_api, monkeypatch):
    document = worker_document(platform_env)
    document["sources"].append({**copy.deepcopy(document["sources"][0]), "source_id": "Bad Id"})
    use_worker(monkeypatch, worker_api, document)
    worker_api.ledger.sources_document = document
    catalog_fetched = defs()  # fetched and reported while the Worker is up
    assert worker_api.ledger.load_errors[0]["source_id"] == "Bad Id"
    worker_api.stop()  # now only the cached document is left, and nobody to report to
    assert {spec.key for spec in defs().resolve_all_asset_specs()} == {
        spec.key for spec in catalog_fetched.resolve_all_asset_specs()}


def test_run_workers_rebuild_the_same_placeholders_and_versions():
    catalog = SourceCatalog.from_document({"sources": [{"source_id": "x"}], "versions": {"x": 4, "y": True}},
                                          "worker:test")
    assert catalog.versions == {"x": 4} and catalog.problems[0].source_id == "x"
    assert SourceCatalog.from_json(catalog.to_json()) == catalog
