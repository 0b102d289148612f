"""How each kind of run writes its table (load_request.write_disposition_for), against real DuckDB tables: a partial
run of a replace source merges, a full run still replaces, append never deletes, and impossible requests are
refused before anything is read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from dlt_platform.load_request import LoadRequest, write_disposition_for
from dlt_platform.loads import run_load

from .conftest import FIXED_NOW, NAMESPACE_ID, make_definition, query
from .test_loads import lead_keys


@pytest.fixture
def rest_settings(settings):
    return dataclasses.replace(settings, kv_transport_override="rest")


def put_orders(kv_state, numbers, items=1):
    for number in numbers:
        kv_state.namespaces[NAMESPACE_ID].put(f"order:{number:02d}", json.dumps(
            {"n": number, "items": [{"sku": f"S{number}-{i}"} for i in range(items)]}))


def orders(settings) -> list[tuple]:
    return query(settings, "select cf_kv_key, n from source_test.orders_kv order by 1")


def test_dispositions_by_request():
    window = (FIXED_NOW - dt.timedelta(days=1), FIXED_NOW)
    incremental = {"incremental": {"key_prefix": "lead:{date:%Y%m%d}", "start": "2026-11-01"}}
    partial = [LoadRequest(limit=5), LoadRequest(keys=("a",)), LoadRequest(from_snapshot="p/2026-11-26/1.ndjson.gz"),
               LoadRequest(window=window)]
    for disposition in ("replace", "merge", "append"):
        definition = make_definition(destination={"write_disposition": disposition})
        windowed = make_definition(destination={"write_disposition": disposition}, extract=incremental)
        expected = "merge" if disposition == "replace" else disposition
        assert [write_disposition_for(definition, request) for request in partial] == [expected] * 4
        assert write_disposition_for(windowed, LoadRequest()) == expected, "an incremental lookback is partial"
        assert write_disposition_for(definition, LoadRequest()) == disposition
        assert write_disposition_for(windowed, LoadRequest(full_refresh=True)) == disposition
        complete_replay = LoadRequest(from_snapshot="p/2026-11-26/1.complete.ndjson.gz")
        assert write_disposition_for(definition, complete_replay) == disposition, "a complete run's snapshot"
        assert write_disposition_for(windowed, complete_replay) == disposition


def test_a_partial_merge_into_a_replace_table_then_a_full_replace(kv_state, rest_settings):
    put_orders(kv_state, range(10), items=2)
    definition = make_definition()
    run_load(definition, rest_settings)
    kv_state.namespaces[NAMESPACE_ID].put("order:00", json.dumps({"n": 100, "items": [{"sku": "NEW"}]}))
    run_load(definition, rest_settings, LoadRequest(limit=3))
    assert orders(rest_settings) == [("order:00", 100)] + [(f"order:{n:02d}", n) for n in range(1, 10)]
    assert query(rest_settings, "select count(*) from source_test.orders_kv__items") == [(19,)]
    assert query(rest_settings, "select i.sku from source_test.orders_kv__items i join source_test.orders_kv o "
                                "on i._dlt_root_id = o._dlt_id where o.cf_kv_key = 'order:00'") == [("NEW",)]
    run_load(definition, rest_settings, LoadRequest(keys=("order:05", "order:05", "order:06")))  # a key given twice
    assert len(orders(rest_settings)) == 10
    assert query(rest_settings, "select count(*) from source_test.orders_kv__items") == [(19,)]
    # A later full run still replaces: a key deleted from KV leaves the table, with its child rows.
    kv_state.namespaces[NAMESPACE_ID].delete("order:09")
    run_load(definition, rest_settings)
    assert [key for key, _ in orders(rest_settings)] == [f"order:{n:02d}" for n in range(9)]
    assert query(rest_settings, "select count(*) from source_test.orders_kv__items") == [(17,)]


def test_an_incremental_replace_source_keeps_older_windows(kv_state, rest_settings):
    lead_keys(kv_state)  # 10 days x 3 leads, plus one key outside the windows
    definition = make_definition(destination={"write_disposition": "replace", "table": "leads_kv"},
                                 extract={"incremental": {"key_prefix": "lead:{date:%Y%m%d}", "lookback": 3,
                                                          "start": "2026-11-01"}})
    assert run_load(definition, rest_settings, LoadRequest(full_refresh=True)).rows_by_table == {"leads_kv": 31}
    assert run_load(definition, rest_settings, LoadRequest(now=FIXED_NOW)).rows_by_table == {"leads_kv": 9}
    window = (dt.datetime(2026, 11, 13, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 14, tzinfo=dt.timezone.utc))
    run_load(definition, rest_settings, LoadRequest(window=window))
    assert query(rest_settings, "select count(*), count(distinct cf_kv_key) from source_test.leads_kv") == [(31, 31)]


def test_a_partial_run_of_an_append_source_appends(kv_state, rest_settings):
    put_orders(kv_state, range(5))
    definition = make_definition(destination={"write_disposition": "append"})
    run_load(definition, rest_settings)
    run_load(definition, rest_settings, LoadRequest(keys=("order:01", "order:02")))
    assert query(rest_settings, "select cf_kv_key, count(*) from source_test.orders_kv group by 1 order by 1") == [
        ("order:00", 1), ("order:01", 2), ("order:02", 2), ("order:03", 1), ("order:04", 1)]


@pytest.mark.parametrize("request_, message", [
    (LoadRequest(full_refresh=True, limit=2), "full_refresh: cannot be combined with limit or keys"),
    (LoadRequest(full_refresh=True, keys=("order:01",)), "full_refresh: cannot be combined with limit or keys"),
    (LoadRequest(limit=0), "limit: must be at least 1"),
    (LoadRequest(keys=()), "keys: give at least one key"),
])
def test_requests_that_would_lose_rows_are_refused_before_reading(kv_state, rest_settings, request_, message):
    put_orders(kv_state, range(5))
    run_load(make_definition(), rest_settings)
    requests_before = len(kv_state.requests)
    with pytest.raises(ValueError, match=message):
        run_load(make_definition(), rest_settings, request_)
    assert len(kv_state.requests) == requests_before
    assert len(orders(rest_settings)) == 5
