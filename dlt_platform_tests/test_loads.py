import dataclasses
import datetime as dt
import gzip
import json

import pytest

from dlt_platform.load_request import LoadRequest
from dlt_platform.loads import key_batches, run_load
from dlt_platform.source_types.cloudflare_kv.rows import AUDIT_COLUMNS

from .bigquery_fixtures import DuckDBWarehouse
from .conftest import FIXED_NOW, NAMESPACE_ID, NAMESPACE_TITLE, make_definition, query
from .test_rest_client import FAST

# Every load test runs over both transports (they must give identical tables) into DuckDB, and once more into
# the emulated BigQuery, the production warehouse.
LANES = [("rest", "duckdb"), ("worker", "duckdb"), ("rest", "bigquery")]


@pytest.fixture(params=LANES, ids=["-".join(lane) for lane in LANES])
def lane(request, settings):
    transport, destination = request.param
    if destination == "bigquery":
        warehouse = request.getfixturevalue("bigquery_warehouse")
        return dataclasses.replace(warehouse.settings, kv_transport_override=transport), warehouse
    return dataclasses.replace(settings, kv_transport_override=transport), DuckDBWarehouse(settings)


@pytest.fixture
def transport_settings(lane):
    return lane[0]


@pytest.fixture
def warehouse(lane):
    return lane[1]


def put(kv_state, key, value, metadata=None, expiration=None):
    kv_state.namespaces[NAMESPACE_ID].put(key, value if isinstance(value, bytes) else
                                          (value if isinstance(value, str) else json.dumps(value)), metadata, expiration)


ORDER = {"order_id": "o1", "total": 12.5, "customer": {"id": "c1", "city": "Austin"},
         "items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]}


def test_json_objects_expand_into_columns_next_to_the_audit_columns(kv_state, transport_settings, warehouse):
    put(kv_state, "order:o1", ORDER, {"schema": 2}, 1_900_000_000)
    result = run_load(make_definition(), transport_settings)
    assert result.rows_by_table == {"orders_kv": 1, "orders_kv__items": 2}
    assert set(AUDIT_COLUMNS) | {"order_id", "total", "customer__id", "customer__city"} <= warehouse.columns(
        "source_test", "orders_kv")
    (row,) = warehouse.query("select cf_kv_key, cf_kv_namespace_id, cf_kv_namespace_title, "
                                       "cf_kv_metadata, cf_kv_expiration, cf_kv_value_is_json, cf_kv_value_encoding, "
                                       "order_id, total, customer__city, cf_kv_value_raw, cf_kv_fetched_at "
                                       "from source_test.orders_kv")
    assert row[:10] == ("order:o1", NAMESPACE_ID, NAMESPACE_TITLE, '{"schema":2}', 1_900_000_000, True, "text", "o1",
                        12.5, "Austin")
    assert json.loads(row[10]) == ORDER
    assert abs(row[11] - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    assert warehouse.query("select sku, quantity from source_test.orders_kv__items order by sku") == [
        ("A", 1), ("B", 2)]


def test_value_fields_never_overwrite_audit_columns(kv_state, transport_settings, warehouse):
    put(kv_state, "k", {"cf_kv_key": "spoofed", "CF_KV_METADATA": "spoofed too", "value_cf_kv_key": "taken",
                        "plain": 1})
    run_load(make_definition(), transport_settings)
    (row,) = warehouse.query("select cf_kv_key, cf_kv_metadata, value_cf_kv_key, value_value_cf_kv_key, "
                                       "value_cf_kv_metadata, plain from source_test.orders_kv")
    assert row == ("k", None, "taken", "spoofed", "spoofed too", 1)


def test_non_object_values_keep_their_raw_text_and_binary_is_base64(kv_state, transport_settings, warehouse):
    put(kv_state, "text", "just words, not JSON")
    put(kv_state, "number", "42")
    put(kv_state, "array", "[1, 2, 3]")
    put(kv_state, "binary", b"\x89PNG\r\n\x1a\n\xff")
    put(kv_state, "empty", "")
    run_load(make_definition(), transport_settings)
    rows = warehouse.query("select cf_kv_key, cf_kv_value_is_json, cf_kv_value_raw, cf_kv_value_encoding "
                                     "from source_test.orders_kv order by cf_kv_key")
    assert rows == [
        ("array", True, "[1, 2, 3]", "text"),
        ("binary", False, "iVBORw0KGgr/", "base64"),
        ("empty", False, "", "text"),
        ("number", True, "42", "text"),
        ("text", False, "just words, not JSON", "text"),
    ]


def test_merge_twice_keeps_one_row_per_key_and_no_stale_child_rows(kv_state, transport_settings, warehouse):
    definition = make_definition(destination={"write_disposition": "merge"})
    put(kv_state, "order:o1", ORDER)
    put(kv_state, "order:o2", {**ORDER, "order_id": "o2"})
    run_load(definition, transport_settings)
    put(kv_state, "order:o1", {**ORDER, "total": 99.0, "items": [{"sku": "C", "quantity": 5}]})
    run_load(definition, transport_settings)
    assert warehouse.query("select cf_kv_key, total from source_test.orders_kv order by 1") == [
        ("order:o1", 99.0), ("order:o2", 12.5)]
    assert warehouse.query("select count(*) from source_test.orders_kv__items") == [(3,)]


def test_a_new_field_becomes_a_column_and_a_type_clash_does_not_fail(kv_state, transport_settings, warehouse, request):
    if warehouse.name == "bigquery":
        # dlt adds the columns with ALTER TABLE ... ADD COLUMN, as BigQuery documents; bqemulator 1.4.0 refuses two
        # ADD COLUMN clauses in one statement and keeps one out of its catalog, so the values never land. Strict:
        # this lane fails as soon as an emulator version handles it, and the marker must go.
        request.applymarker(pytest.mark.xfail(strict=True, reason="bqemulator ignores ALTER TABLE ADD COLUMN"))
    definition = make_definition(destination={"write_disposition": "append"})
    put(kv_state, "a", {"amount": 1})
    run_load(definition, transport_settings)
    put(kv_state, "b", {"amount": "not a number", "coupon": "FALL26"})
    result = run_load(definition, transport_settings)
    assert result.rows_by_table == {"orders_kv": 2}
    table_columns = warehouse.columns("source_test", "orders_kv")
    assert "coupon" in table_columns and any(c.startswith("amount__v_") for c in table_columns)
    assert warehouse.query("select count(*) from source_test.orders_kv") == [(3,)]


def lead_keys(kv_state):
    for day in range(12, 22):
        for number in range(3):
            put(kv_state, f"lead:202611{day:02d}:{number}", {"day": day, "n": number})
    put(kv_state, "other:1", {"x": 1})


def incremental(**extra):
    return make_definition(
        destination={"write_disposition": "merge", "table": "leads_kv"},
        extract={"incremental": {"key_prefix": "lead:{date:%Y%m%d}", "lookback": 3, "start": "2026-11-01", **extra}},
    )


def test_incremental_runs_load_the_lookback_windows_only(kv_state, transport_settings, warehouse):
    lead_keys(kv_state)
    run_load(incremental(), transport_settings, LoadRequest(now=FIXED_NOW))
    assert warehouse.query("select distinct day from source_test.leads_kv order by 1") == [(18,), (19,), (20,)]
    run_load(incremental(), transport_settings, LoadRequest(now=FIXED_NOW + dt.timedelta(days=1)))
    assert warehouse.query("select count(*), count(distinct cf_kv_key) from source_test.leads_kv") == [(12, 12)]


def test_a_partition_window_loads_exactly_its_days(kv_state, transport_settings, warehouse):
    lead_keys(kv_state)
    window = (dt.datetime(2026, 11, 13, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 15, tzinfo=dt.timezone.utc))
    result = run_load(incremental(), transport_settings, LoadRequest(window=window))
    assert result.rows_by_table == {"leads_kv": 6}
    assert warehouse.query("select distinct day from source_test.leads_kv order by 1") == [(13,), (14,)]


def test_full_refresh_of_an_incremental_source_reads_the_whole_namespace(kv_state, transport_settings, warehouse):
    lead_keys(kv_state)
    result = run_load(incremental(), transport_settings, LoadRequest(full_refresh=True, now=FIXED_NOW))
    assert result.rows_by_table == {"leads_kv": 31}


def test_explicit_key_batches_merge_into_one_table(kv_state, transport_settings, warehouse):
    for number in range(25):
        put(kv_state, f"k{number:02d}", {"n": number})
    keys = [f"k{number:02d}" for number in range(25)]
    batches = list(key_batches(keys, batch_size=10, skip_batches=1, max_batches=5))
    assert [(n, len(b)) for n, b in batches] == [(1, 10), (2, 5)]
    for _, batch in batches:
        run_load(make_definition(), transport_settings, LoadRequest(keys=tuple(batch)))
    run_load(make_definition(), transport_settings, LoadRequest(keys=tuple(keys[10:12])))
    assert warehouse.query("select min(n), max(n), count(*) from source_test.orders_kv") == [(10, 24, 15)]


def test_limit_stops_after_that_many_records(kv_state, transport_settings, warehouse):
    for number in range(50):
        put(kv_state, f"k{number:02d}", {"n": number})
    assert run_load(make_definition(), transport_settings, LoadRequest(limit=7)).rows_by_table == {"orders_kv": 7}


def test_raw_snapshot_holds_what_was_extracted_and_replays_without_kv(kv_state, kv_api, transport_settings, warehouse):
    definition = make_definition(staging={"raw_snapshot": True, "r2_prefix": "cloudflare_kv/orders"})
    put(kv_state, "order:o1", ORDER, {"m": 1})
    put(kv_state, "bin", b"\xff\x00")
    first = run_load(definition, transport_settings)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert first.snapshot_url.endswith(f"/cloudflare_kv/orders/{today}/{first.load_id}.complete.ndjson.gz")
    with gzip.open(first.snapshot_url, "rt") as file:
        records = [json.loads(line) for line in file]
    assert [(r["key"], r["value_encoding"], r["metadata"]) for r in records] == [("bin", "base64", None),
                                                                               ("order:o1", "text", {"m": 1})]
    before = warehouse.query("select * exclude (_dlt_load_id, _dlt_id) from source_test.orders_kv order by 1")
    kv_state.namespaces[NAMESPACE_ID].entries.clear()
    requests_before = len(kv_state.requests)
    replay = run_load(definition, transport_settings, LoadRequest(from_snapshot=first.snapshot_url))
    assert replay.rows_by_table == {"orders_kv": 2, "orders_kv__items": 2} and replay.snapshot_url is None
    assert len(kv_state.requests) == requests_before, "replay must not touch KV"
    after = warehouse.query("select * exclude (_dlt_load_id, _dlt_id) from source_test.orders_kv order by 1")
    assert after == before


def test_a_complete_runs_snapshot_replays_as_that_run_loaded_and_a_partial_runs_merges(kv_state, transport_settings,
                                                                                         warehouse):
    definition = make_definition(staging={"raw_snapshot": True, "r2_prefix": "cloudflare_kv/orders"})
    for number in range(4):
        put(kv_state, f"order:{number}", {"n": number, "items": [{"sku": f"S{number}"}]})
    complete = run_load(definition, transport_settings)
    partial = run_load(definition, transport_settings, LoadRequest(limit=2))
    assert complete.snapshot_url.endswith(".complete.ndjson.gz")
    assert partial.snapshot_url.endswith(f"/{partial.load_id}.ndjson.gz")
    put(kv_state, "order:9", {"n": 9, "items": [{"sku": "S9"}]})
    run_load(definition, transport_settings)

    def keys_and_skus() -> list[tuple]:
        return warehouse.query("select o.cf_kv_key, i.sku from source_test.orders_kv o join "
                               "source_test.orders_kv__items i on i._dlt_root_id = o._dlt_id order by 1")

    replay = run_load(definition, transport_settings, LoadRequest(from_snapshot=partial.snapshot_url))
    assert replay.write_disposition == "merge" and len(keys_and_skus()) == 5, "a partial run's replay merges"
    replay = run_load(definition, transport_settings, LoadRequest(from_snapshot=complete.snapshot_url))
    assert replay.write_disposition == "replace"
    assert keys_and_skus() == [(f"order:{n}", f"S{n}") for n in range(4)], "the table as the complete run left it"


def test_an_extraction_that_fails_publishes_no_snapshot_and_keeps_the_table(kv_state, settings):
    definition = make_definition(staging={"raw_snapshot": True, "r2_prefix": "p"})
    put(kv_state, "k", {"n": 1})
    run_load(definition, settings)
    kv_state.fail_next(500, times=50, path_contains="/keys")
    with pytest.raises(Exception, match="HTTP 500"):
        run_load(definition, dataclasses.replace(settings, kv_transport_override="rest", retry_policy=FAST))
    assert query(settings, "select count(*) from source_test.orders_kv") == [(1,)]
    snapshots = list((settings.data_dir / "raw_staging").rglob("*.ndjson.gz"))
    assert len(snapshots) == 1 and not list((settings.data_dir / "tmp").iterdir())


def test_a_package_left_by_a_failed_run_is_loaded_first_and_the_new_extraction_still_lands(kv_state, settings,
                                                                                           capsys):
    from dlt_platform.loads import build_pipeline, build_source

    definition = make_definition(destination={"write_disposition": "merge"})
    put(kv_state, "a", {"n": 1})
    pipeline = build_pipeline(definition, settings)
    pipeline.extract(build_source(definition, settings))
    pipeline.normalize()  # a run that died before its load step: its package waits in the pipeline
    put(kv_state, "b", {"n": 2})
    result = run_load(definition, settings)
    assert "left by an earlier failed run" in capsys.readouterr().err
    assert result.rows_by_table == {"orders_kv": 2}
    assert query(settings, "select cf_kv_key, n from source_test.orders_kv order by 1") == [("a", 1), ("b", 2)]
