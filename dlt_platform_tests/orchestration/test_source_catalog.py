"""Definitions from the Worker with an on-disk fallback, and the same definitions in every process."""

import json

import pytest
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType

from dlt_platform.contract import RUN_SOURCE_ENV
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


def test_a_run_containers_worker_builds_only_its_runs_source(settings, monkeypatch):
    """RUN_SOURCE_ENV (set by the Worker from the run's source tag) cuts the reconstructed catalog to that source;
    a source the catalog lacks (or none) keeps every source, and initialization always reads them all."""
    from dlt_platform.definitions import defs

    stored = SourceCatalog.from_json(json.dumps({"origin": "test", **generated_sources_document(4)}))
    context = DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION)
    context.__dict__["reconstruction_metadata"] = {"dlt_platform/sources": stored.to_json()}
    run_settings = settings.__class__(**{**settings.__dict__, "run_source_id": "kv_source_002"})
    with DefinitionsLoadContext.scoped(context):
        only = load_catalog(run_settings)
        assert [d.source_id for d in only.definitions] == ["kv_source_002"]
        unknown = settings.__class__(**{**settings.__dict__, "run_source_id": "not_a_source"})
        assert load_catalog(unknown).definitions == stored.definitions
        assert load_catalog(settings).definitions == stored.definitions
    assert len(load_catalog(run_settings).definitions) == len(load_catalog(settings).definitions)

    # The run worker's code location: the run's source's table and job, and no other source's.
    monkeypatch.setenv(RUN_SOURCE_ENV, "kv_source_002")
    with DefinitionsLoadContext.scoped(context):
        repository = defs().get_repository_def()
    tables = {key.path[-1] for key in repository.asset_graph.get_all_asset_keys()}
    assert "table_002" in tables and not tables & {"table_000", "table_001", "table_003"}
    assert repository.has_job("load_kv_source_002") and not repository.has_job("load_kv_source_000")
