"""Definitions from the Worker with an on-disk fallback, and the same definitions in every process."""

import json

import pytest
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType

from dlt_platform.definitions import load_catalog
from dlt_platform.orchestration.source_catalog import CatalogUnavailable, SourceCatalog, read_catalog, worker_cache_path
from dlt_platform_tests.orchestration.conftest import INTERNAL_TOKEN, generated_sources_document


def test_worker_definitions_are_cached_and_used_while_it_is_down(settings, worker_api):
    worker_api.ledger.sources_document = generated_sources_document(3)
    worker_settings = settings.__class__(**{**settings.__dict__, "orchestrator_url": worker_api.base_url,
                                            "internal_token": INTERNAL_TOKEN})
    fetched = read_catalog(worker_settings)
    assert [d.source_id for d in fetched.definitions] == ["kv_source_000", "kv_source_001", "kv_source_002"]
    assert fetched.origin.startswith("worker:") and worker_cache_path(worker_settings).is_file()

    worker_api.stop()
    cached = read_catalog(worker_settings)
    assert cached.origin.startswith("worker-cache:")
    assert cached.definitions == fetched.definitions

    worker_cache_path(worker_settings).unlink()
    with pytest.raises(CatalogUnavailable, match="no cached copy"):
        read_catalog(worker_settings)


def test_run_workers_rebuild_from_reconstruction_metadata_not_the_file(settings, tmp_path):
    stored = SourceCatalog.from_json(json.dumps({"origin": "test", **generated_sources_document(2)}))
    changed_file = tmp_path / "sources.json"
    changed_file.write_text(json.dumps(generated_sources_document(5)))
    later_settings = settings.__class__(**{**settings.__dict__, "config_path": changed_file})
    context = DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION)
    context.__dict__["reconstruction_metadata"] = {"dlt_platform/sources": stored.to_json()}
    with DefinitionsLoadContext.scoped(context):
        assert load_catalog(later_settings).definitions == stored.definitions
    assert len(load_catalog(later_settings).definitions) == 5  # initialization reads the file
