"""The Arrow shaping of KV rows (arrow_tables.py) against dlt's row normalizer: the same records loaded both ways
must give the same tables, columns, types, rows and `_dlt_*` linkage, in DuckDB and (tests parametrized with
`bigquery`) in the BigQuery emulator, where the Arrow path's root table arrives as JSON lines (json_lines.py)."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from dlt_platform.config import SourceDefinition
from dlt_platform.loads import build_pipeline, run_load
from dlt_platform.settings import Settings

from .bigquery_fixtures import BigQueryWarehouse, DuckDBWarehouse
from .conftest import NAMESPACE_ID, make_definition

FALLBACK = "row normalizer shapes the rows from here on"


def put(kv_state, key, value, metadata=None, expiration=None):
    raw = value if isinstance(value, (bytes, str)) else json.dumps(value)
    kv_state.namespaces[NAMESPACE_ID].put(key, raw, metadata, expiration)


def flat_records(kv_state, count: int = 1200) -> None:
    """More than a listing page of list-free values: nested objects, every scalar type, type clashes, ISO and
    not-quite-ISO timestamps, nulls, awkward field names, audit-name collisions, non-JSON and binary values."""
    for n in range(count):
        value = {"id": n, "name": f"n{n}", "price": n / 4, "active": n % 2 == 0,
                 "created_at": f"2026-0{1 + n % 9}-1{n % 10}T0{n % 10}:15:00+0{n % 3}:00",
                 "customer": {"id": f"c{n % 7}", "address": {"city": ["Austin", "Oslo"][n % 2], "zip": n % 100}},
                 "maybe": None if n % 3 else n, "Odd Field-Name": n % 5, "empty": {}}
        if n % 50 == 7:
            value["price"] = "unknown"  # double column, text value: variant price__v_text
        if n % 60 == 11:
            value["id"] = 1.5  # bigint column, double value: variant
        if n % 70 == 13:
            value["created_at"] = "yesterday"  # timestamp column, text value: variant
        if n % 80 == 17:
            value["active"] = "yes"
        if n % 90 == 19:
            value["cf_kv_key"] = "spoofed"
        if n % 100 == 23:
            value["price"] = 7  # int into a double column: coerced, no variant
        put(kv_state, f"flat:{n:05d}", value, {"v": n % 4} if n % 2 else None, 1_900_000_000 + n if n % 5 else None)
    put(kv_state, "flat:text", "just words")
    put(kv_state, "flat:number", "42")
    put(kv_state, "flat:array", "[1, 2]")
    put(kv_state, "flat:binary", b"\x89PNG\r\n\x1a\n\xff")
    put(kv_state, "flat:empty", "")


def nested_records(kv_state, count: int = 30) -> None:
    """Values whose lists become child tables: lists of objects (with objects and lists inside), scalars in lists,
    lists of lists, lists inside nested objects, empty lists, nulls and mixed items, and type clashes inside child
    tables."""
    for n in range(count):
        put(kv_state, f"nested:{n:03d}", {
            "order_id": f"o{n}", "total": n * 1.5,
            "items": [{"sku": f"S{i}", "quantity": i if (n + i) % 7 else "many", "tags": ["a", "b"][: i % 3],
                       "dims": {"w": i / 2, "unit": "cm"}} for i in range(n % 4)],
            "codes": [n, n + 1] if n % 5 else [n, "x", None, 2.5], "grid": [[n, 1], [2]],
            "meta": {"labels": ["x", None] if n % 2 else [], "mixed": [{"k": n}, 7] if n % 3 == 0 else None},
            "seen": [f"2026-11-0{1 + n % 9}T10:00:00+00:00"]}, {"m": n})


def steady_records(kv_state, count: int = 3500) -> None:
    """Several listing pages of values whose types hold steady after the first page (the column-at-a-time lane):
    nested and null objects, lists of objects holding lists, scalar lists with nulls, lists of lists, empty and null
    lists, zoned and zoneless timestamps, text that looks like a date; among them non-JSON, binary, scalar, array,
    whitespace-led and multi-line values, and a page whose types clash (shaped value by value)."""
    for n in range(count):
        value = {"order_id": f"o{n}", "total": n * 1.25, "count": n, "paid": n % 3 == 0,
                 "placed_at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:30:00.{n % 1000:03d}+0{n % 9}:00",
                 "local_at": "2026-11-02T10:00:00", "day": f"2026-11-{1 + n % 28:02d}",
                 "customer": {"id": f"c{n % 11}", "address": {"city": ["Austin", "Oslo", "Pune"][n % 3]}}
                 if n % 13 else None,
                 "items": [{"sku": f"S{i}", "qty": i + 1, "price": i * 2.5, "tags": ["x", None, "z"][: i + 1],
                            "sizes": [[i, i + 1], []]} for i in range(n % 4)] if n % 17 else None,
                 "codes": [n, None, n + 2], "empty": [], "note": None}
        if 2000 <= n < 2010:
            value["count"] = "many"  # a page with a clash: shaped value by value, variant column
        put(kv_state, f"steady:{n:05d}", value, {"v": n % 4} if n % 2 else None, 1_900_000_000 + n if n % 5 else None)
    put(kv_state, "steady:01500x", "just words")
    put(kv_state, "steady:01501x", b"\x89PNG\r\n\x1a\n\xff")
    put(kv_state, "steady:01502x", "[1, 2]")
    put(kv_state, "steady:01503x", "42")
    put(kv_state, "steady:02500x", '  {"order_id": "lead-space", "count": 1}')
    put(kv_state, "steady:02501x", '{"order_id": "two-lines",\n "count": 2}')
    put(kv_state, "steady:02502x", '{"order_id": "bad json",')


@dataclasses.dataclass
class Shaping:
    """One of the two loads compared: its settings (shaping, data folder, warehouse) and its dataset (in BigQuery
    the two loads share the emulator, so each has its own)."""

    settings: Settings
    dataset: str
    warehouse: DuckDBWarehouse | BigQueryWarehouse
    rows_loaded: dict[str, int] = dataclasses.field(default_factory=dict)  # the last run's rows_by_table

    def definition(self, definition: SourceDefinition) -> SourceDefinition:
        destination = definition.destination.model_copy(update={"dataset": self.dataset})
        return definition.model_copy(update={"destination": destination})


def table_columns(shaping: Shaping, table: str) -> dict[str, str]:
    """Column -> the warehouse's type, in table order."""
    if isinstance(shaping.warehouse, BigQueryWarehouse):
        return shaping.warehouse.column_types(shaping.dataset, table)
    return dict(shaping.warehouse.query(
        "select column_name, data_type from information_schema.columns where "
        f"table_schema = '{shaping.dataset}' and table_name = '{table}' order by ordinal_position"))


def table_names(shaping: Shaping) -> list[str]:
    warehouse = shaping.warehouse
    if isinstance(warehouse, BigQueryWarehouse):
        names = [table.table_id for table in warehouse.client.list_tables(shaping.dataset)]
    else:
        names = [row[0] for row in warehouse.query(
            f"select table_name from information_schema.tables where table_schema = '{shaping.dataset}'")]
    return [name for name in names if not name.startswith("_dlt")]


def tables(shaping: Shaping) -> dict[str, tuple[dict[str, str], list[str], list[tuple]]]:
    """Per table of the dataset: column -> type (in table order), the columns compared, and its rows sorted, with
    `_dlt_id`/`_dlt_load_id` left out and `_dlt_parent_id`/`_dlt_root_id` replaced by the key of the root row they
    lead to (which must exist), the parent's list position too for grandchildren."""
    result = {}
    query, dataset = shaping.warehouse.query, shaping.dataset
    on_bigquery = isinstance(shaping.warehouse, BigQueryWarehouse)
    quote = "`" if on_bigquery else '"'
    names = table_names(shaping)
    for table in names:
        columns = table_columns(shaping, table)
        # cf_kv_fetched_at: the two loads read at different times (its presence is compared instead)
        keep = [c if c != "cf_kv_fetched_at" else "cf_kv_fetched_at is not null" for c in sorted(columns)
                if c not in ("_dlt_id", "_dlt_load_id", "_dlt_parent_id", "_dlt_root_id")]
        select = ", ".join(f"t.{quote}{c}{quote}" if c in columns else f"t.{c}" for c in keep)
        if "_dlt_root_id" in columns:
            parent = max((name for name in names if table.startswith(name + "__")), key=len)
            parent_key = ("p.cf_kv_key" if parent == "orders_kv" else
                          "concat(cast(p._dlt_list_idx as string), '@', r2.cf_kv_key)" if on_bigquery else
                          "p._dlt_list_idx::varchar || '@' || r2.cf_kv_key")
            joins = (f"join {dataset}.orders_kv r on r._dlt_id = t._dlt_root_id "
                     f"join {dataset}.{parent} p on p._dlt_id = t._dlt_parent_id ")
            if parent != "orders_kv":
                joins += f"join {dataset}.orders_kv r2 on r2._dlt_id = p._dlt_root_id "
            sql = f"select {select}, r.cf_kv_key, {parent_key} from {dataset}.{table} t {joins}"
            count = query(f"select count(*) from {dataset}.{table}")[0][0]
        else:
            sql, count = f"select {select} from {dataset}.{table} t", None
        rows = sorted(query(sql), key=repr)
        if "_dlt_load_id" in columns:
            assert query(f"select count(*) from {dataset}.{table} where _dlt_load_id not in "
                         f"(select load_id from {dataset}._dlt_loads)") == [(0,)], table
        if count is not None:
            assert len(rows) == count, f"{table}: child rows whose parent or root does not resolve"
        result[table] = (columns, keep, rows)
    return result


def schema_columns(shaping: Shaping, definition) -> dict[str, dict[str, tuple]]:
    schema = build_pipeline(shaping.definition(definition), shaping.settings).default_schema
    return {name: {column: (spec.get("data_type"), spec.get("nullable", True), bool(spec.get("variant")),
                            bool(spec.get("row_key")), bool(spec.get("unique")))
                   for column, spec in table["columns"].items() if spec.get("data_type")}
            for name, table in ((table["name"], table) for table in schema.data_tables())}


# The tests that also run against the emulator (`both` parametrized indirectly; DuckDB only by default).
BOTH_WAREHOUSES = pytest.mark.parametrize("both", ["duckdb", "bigquery"], indirect=True)


@pytest.fixture
def both(request, settings, tmp_path) -> tuple[Shaping, Shaping]:
    """The Arrow shaping's load and the row normalizer's, into the warehouse the test is parametrized with."""
    if getattr(request, "param", "duckdb") == "bigquery":
        warehouse: DuckDBWarehouse | BigQueryWarehouse = request.getfixturevalue("bigquery_warehouse")
        settings, datasets = warehouse.settings, ("source_test", "source_rows")
    else:
        warehouse, datasets = DuckDBWarehouse(settings), ("source_test", "source_test")
    shapings = []
    for shaping, dataset in zip(("arrow", "rows"), datasets, strict=True):
        where = dataclasses.replace(settings, data_dir=tmp_path / shaping, kv_shaping=shaping)
        reader = warehouse if isinstance(warehouse, BigQueryWarehouse) else DuckDBWarehouse(where)
        shapings.append(Shaping(where, dataset, reader))
    return shapings[0], shapings[1]


def load_both(definition, both, caplog) -> list[bool]:
    """Loads with both shapings; says, per run, whether the Arrow one fell back to the row normalizer."""
    fell_back = []
    for shaping in both:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dlt_platform.source_types.cloudflare_kv"):
            shaping.rows_loaded = run_load(shaping.definition(definition), shaping.settings).rows_by_table
        fell_back.append(FALLBACK in caplog.text)
    return fell_back


def assert_same(definition, both) -> None:
    arrow, rows = both
    arrow_tables, row_tables = tables(arrow), tables(rows)
    assert arrow.rows_loaded == rows.rows_loaded and arrow.rows_loaded.get("orders_kv"), "the rows each run reports"
    assert arrow_tables.keys() == row_tables.keys()
    for table, (columns, compared, table_rows) in row_tables.items():
        arrow_columns, _, arrow_rows = arrow_tables[table]
        assert arrow_columns == columns, table
        # The same order too, except for variant columns (the Arrow path appends a page's after its other columns).
        assert [c for c in arrow_columns if "__v_" not in c] == [c for c in columns if "__v_" not in c], table
        for arrow_row, row in zip(arrow_rows, table_rows, strict=False):  # the counts are compared next
            differing = {name: (a, b) for name, a, b in zip(compared, arrow_row, row, strict=False) if a != b}
            assert not differing, f"{table}, {row}: (Arrow, rows) differ in {differing}"
        assert len(arrow_rows) == len(table_rows), table
    arrow_schema, rows_schema = schema_columns(arrow, definition), schema_columns(rows, definition)
    assert arrow_schema.keys() == rows_schema.keys()
    for table, table_columns_rows in rows_schema.items():
        differing = {name: (arrow_schema[table].get(name), spec) for name, spec in table_columns_rows.items()
                     if arrow_schema[table].get(name) != spec}
        assert arrow_schema[table] == table_columns_rows, f"{table}: (Arrow, rows) schema columns differ: {differing}"
    if isinstance(arrow.warehouse, BigQueryWarehouse):
        # The metadata objects are stored as JSON objects, not JSON strings (the emulator reports JSON as STRING).
        read = [shaping.warehouse.query(f"select count(*) from {shaping.dataset}.orders_kv "
                                        "where starts_with(to_json_string(cf_kv_metadata), '{')") for shaping in both]
        assert read[0] == read[1] and read[0][0][0] > 0, read


@BOTH_WAREHOUSES
def test_list_free_values_load_the_same_through_arrow(kv_state, both, caplog):
    flat_records(kv_state)
    definition = make_definition()
    assert load_both(definition, both, caplog)[0] is False, "the Arrow path shaped every page"
    assert_same(definition, both)
    columns = tables(both[0])["orders_kv"][0]
    assert {"price__v_text", "id__v_double", "created_at__v_text", "value_cf_kv_key",
            "customer__address__city", "odd_field_name"} <= set(columns)
    assert columns["created_at"] in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP")
    assert columns["cf_kv_metadata"] == ("JSON" if both[0].warehouse.name == "duckdb" else "STRING")  # as reported


@BOTH_WAREHOUSES
def test_values_with_lists_load_the_same_child_tables_through_arrow(kv_state, both, caplog):
    flat_records(kv_state)
    nested_records(kv_state)
    definition = make_definition()
    assert load_both(definition, both, caplog)[0] is False, "the Arrow path shaped every page"
    assert_same(definition, both)
    shaped = tables(both[0])
    assert {"orders_kv__items", "orders_kv__codes", "orders_kv__items__tags", "orders_kv__grid",
            "orders_kv__grid__list", "orders_kv__meta__labels", "orders_kv__meta__mixed",
            "orders_kv__seen"} <= set(shaped)
    assert {"quantity__v_text", "dims__w"} <= set(shaped["orders_kv__items"][0])
    assert {"value__v_text", "value"} <= set(shaped["orders_kv__codes"][0])


@BOTH_WAREHOUSES
def test_merge_runs_keep_the_same_tables_and_replace_child_rows(kv_state, both, caplog):
    definition = make_definition(destination={"write_disposition": "merge"})
    flat_records(kv_state, count=40)
    nested_records(kv_state)
    load_both(definition, both, caplog)
    put(kv_state, "nested:001", {"order_id": "o1", "total": 2.0, "items": [{"sku": "NEW", "quantity": 9}]})
    if both[0].warehouse.name == "duckdb":  # the emulator ignores ALTER TABLE ADD COLUMN, which variants need
        put(kv_state, "flat:00001", {"id": "now text", "price": True})  # clashes with the stored column types
    load_both(definition, both, caplog)
    assert_same(definition, both)
    _, compared, rows = tables(both[0])["orders_kv__items"]
    items = [dict(zip(compared, row, strict=False)) for row in rows if row[-2] == "nested:001"]
    assert [(item["sku"], item["quantity"]) for item in items] == [("NEW", 9)]


def test_a_second_list_free_run_types_clashes_against_the_stored_schema(kv_state, both, caplog):
    definition = make_definition(destination={"write_disposition": "append"})
    put(kv_state, "a", {"amount": 1, "when": "2026-11-01T10:00:00+00:00"})
    load_both(definition, both, caplog)
    put(kv_state, "b", {"amount": "not a number", "when": "later", "coupon": "FALL26"})
    assert load_both(definition, both, caplog) == [False, False]
    assert_same(definition, both)
    assert {"amount__v_text", "when__v_text", "coupon"} <= set(tables(both[0])["orders_kv"][0])


@BOTH_WAREHOUSES
def test_values_the_arrow_path_refuses_reach_the_row_normalizer_with_the_same_tables(kv_state, both, caplog):
    flat_records(kv_state)  # the first listing page goes through Arrow; the refused values sort after it
    put(kv_state, "weird:1", '{"big": 123456789012345678901234567890}')  # past 64 bits
    put(kv_state, "weird:2", {"_dlt_extra": 1, "id": 5})  # dlt's reserved spelling
    definition = make_definition()
    assert load_both(definition, both, caplog)[0] is True
    assert_same(definition, both)


def test_the_shaping_comes_from_the_environment_and_a_wrong_value_names_the_variable(monkeypatch):
    from dlt_platform.settings import Settings, SettingsError

    monkeypatch.setenv("DLT_PLATFORM_KV_SHAPING", "rows")
    assert Settings.from_env().kv_shaping == "rows"
    monkeypatch.setenv("DLT_PLATFORM_KV_SHAPING", "columns")
    with pytest.raises(SettingsError, match="DLT_PLATFORM_KV_SHAPING: expected arrow or rows"):
        Settings.from_env()
    monkeypatch.delenv("DLT_PLATFORM_KV_SHAPING")
    assert Settings.from_env().kv_shaping == "arrow"


@BOTH_WAREHOUSES
def test_pages_whose_types_hold_steady_are_shaped_column_at_a_time_with_the_same_tables(kv_state, both, caplog):
    steady_records(kv_state)
    definition = make_definition()
    with caplog.at_level(logging.DEBUG, logger="dlt_platform.source_types.cloudflare_kv"):
        assert load_both(definition, both, caplog)[0] is False
    assert_same(definition, both)
    shaped = tables(both[0])
    assert {"orders_kv__items", "orders_kv__items__tags", "orders_kv__items__sizes", "orders_kv__items__sizes__list",
            "orders_kv__codes"} <= set(shaped)
    root_columns = shaped["orders_kv"][0]
    assert root_columns["placed_at"] in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP")
    assert root_columns["day"] in ("VARCHAR", "STRING")
    assert "count__v_text" in root_columns


def test_the_column_at_a_time_lane_takes_steady_pages_and_leaves_the_rest(kv_state, both, caplog):
    steady_records(kv_state)
    arrow = both[0]
    with caplog.at_level(logging.DEBUG, logger="dlt_platform.source_types.cloudflare_kv"):
        run_load(arrow.definition(make_definition()), arrow.settings)
    by_value = [r.getMessage() for r in caplog.records if "shaped value by value" in r.getMessage()]
    # 4 listing pages: the first (new columns) and the third (the clash, a value on two lines, broken JSON) are
    # shaped value by value; the second (non-JSON, binary, scalar and array values among objects) and the fourth not
    assert len(by_value) == 2, by_value
    assert "new column" in by_value[0] and "several lines" in by_value[1]


@BOTH_WAREHOUSES
def test_namespaces_without_objects_load_the_same_through_arrow(kv_state, both, caplog):
    """Text, numbers, arrays, binary and empty values over several pages: audit columns only, no value columns."""
    for n in range(2300):  # binary values are read one request each: a few of them
        value = [f"plain text {n}", str(n), f"[{n}, {n + 1}]", ""][n % 4]
        if n % 500 == 7:
            value = b"\x89PNG\xff" + bytes([n % 256])
        put(kv_state, f"odd:{n:05d}", value, {"n": n} if n % 3 else None, 1_900_000_000 + n if n % 2 else None)
    definition = make_definition()
    assert load_both(definition, both, caplog)[0] is False
    assert_same(definition, both)
    assert not {"value", "_empty"} & set(tables(both[0])["orders_kv"][0])
