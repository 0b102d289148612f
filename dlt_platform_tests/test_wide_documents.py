"""Wide, deeply nested real documents load within the local warehouse's memory limit: GitHub's 329 published
example deliveries (hundreds of nested fields each, 58 shapes) as the values of a KV namespace, merged into DuckDB
(dlt's merge, through a staging table, is where a fixed 128 MB limit ran out) through the Arrow lane and through dlt's
row normalizer."""

from __future__ import annotations

import json

import pytest

from dlt_platform.loads import run_load
from dlt_platform.source_types.webhook.send_local import github_examples
from dlt_platform_tests.conftest import columns, make_definition, query


@pytest.fixture
def github_namespace(kv_state):
    namespace = kv_state.namespaces["ns_orders"]
    examples = github_examples()
    for number, (event, body) in enumerate(examples):
        namespace.put(f"{event}:{number:04d}", body, None, None)
    return examples


@pytest.mark.parametrize("shaping", ["arrow", "rows"])
def test_github_example_documents_merge_into_duckdb_within_the_memory_limit(settings, github_namespace, shaping):
    settings = settings.__class__(**{**settings.__dict__, "kv_shaping": shaping})
    definition = make_definition(destination={"write_disposition": "merge"})
    widest = max(sum(1 for _ in _leaves(json.loads(body))) for _, body in github_namespace)
    assert widest > 400  # the documents are as wide as the issue says real ones are

    result = run_load(definition, settings)
    assert result.rows_by_table["orders_kv"] == len(github_namespace)
    assert query(settings, "select count(*), count(distinct cf_kv_key) from source_test.orders_kv") == [
        (len(github_namespace), len(github_namespace))]
    assert len(columns(settings, "source_test", "orders_kv")) > 1000


def _leaves(value):
    if isinstance(value, dict):
        for child in value.values():
            yield from _leaves(child)
    else:
        yield value
