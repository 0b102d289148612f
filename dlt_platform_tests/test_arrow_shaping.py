"""The Arrow shaping of KV rows (arrow_tables.py) against dlt's row normalizer: the same records loaded both ways
into DuckDB must give the same tables, columns, types, rows and `_dlt_*` linkage."""

from __future__ import annotations

import dataclasses
import json
import logging

import duckdb
import pytest

from dlt_platform.loads import build_pipeline, run_load

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


def tables(settings) -> dict[str, tuple[dict[str, str], list[str], list[tuple]]]:
    """Per table of the dataset: column -> type (in table order), the columns compared, and its rows sorted, with
    `_dlt_id`/`_dlt_load_id` left out and `_dlt_parent_id`/`_dlt_root_id` replaced by the key of the root row they
    lead to (which must exist), the parent's list position too for grandchildren."""
    result = {}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as db:
        names = [row[0] for row in db.execute(
            "select table_name from information_schema.tables where table_schema = 'source_test' "
            "and table_name not like '_dlt%'").fetchall()]
        for table in names:
            columns = dict(db.execute("select column_name, data_type from information_schema.columns where "
                                      "table_schema = 'source_test' and table_name = ? order by ordinal_position",
                                      [table]).fetchall())
            # cf_kv_fetched_at: the two loads read at different times (its presence is compared instead)
            keep = [c if c != "cf_kv_fetched_at" else "cf_kv_fetched_at is not null" for c in sorted(columns)
                    if c not in ("_dlt_id", "_dlt_load_id", "_dlt_parent_id", "_dlt_root_id")]
            select = ", ".join(f't."{c}"' if c in columns else f"t.{c}" for c in keep)
            if "_dlt_root_id" in columns:
                parent = max((name for name in names if table.startswith(name + "__")), key=len)
                parent_key = ("p.cf_kv_key" if parent == "orders_kv" else
                              "p._dlt_list_idx::varchar || '@' || r2.cf_kv_key")
                joins = (f"join source_test.orders_kv r on r._dlt_id = t._dlt_root_id "
                         f"join source_test.{parent} p on p._dlt_id = t._dlt_parent_id ")
                if parent != "orders_kv":
                    joins += "join source_test.orders_kv r2 on r2._dlt_id = p._dlt_root_id "
                sql = f"select {select}, r.cf_kv_key, {parent_key} from source_test.{table} t {joins}"
                count = db.execute(f"select count(*) from source_test.{table}").fetchone()[0]
            else:
                sql, count = f"select {select} from source_test.{table} t", None
            rows = sorted(db.execute(sql).fetchall(), key=repr)
            if "_dlt_load_id" in columns:
                assert db.execute(f"select count(*) from source_test.{table} where _dlt_load_id not in "
                                  "(select load_id from source_test._dlt_loads)").fetchone() == (0,), table
            if count is not None:
                assert len(rows) == count, f"{table}: child rows whose parent or root does not resolve"
            result[table] = (columns, keep, rows)
    return result


def schema_columns(settings, definition) -> dict[str, dict[str, tuple]]:
    schema = build_pipeline(definition, settings).default_schema
    return {name: {column: (spec.get("data_type"), spec.get("nullable", True), bool(spec.get("variant")),
                            bool(spec.get("row_key")), bool(spec.get("unique")))
                   for column, spec in table["columns"].items() if spec.get("data_type")}
            for name, table in ((table["name"], table) for table in schema.data_tables())}


@pytest.fixture
def both(settings, tmp_path):
    arrow = dataclasses.replace(settings, data_dir=tmp_path / "arrow", kv_shaping="arrow")
    rows = dataclasses.replace(settings, data_dir=tmp_path / "rows", kv_shaping="rows")
    return arrow, rows


def load_both(definition, both, caplog) -> list[bool]:
    """Loads with both shapings; says, per run, whether the Arrow one fell back to the row normalizer."""
    fell_back = []
    for settings in both:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dlt_platform.source_types.cloudflare_kv"):
            run_load(definition, settings)
        fell_back.append(FALLBACK in caplog.text)
    return fell_back


def assert_same(definition, both) -> None:
    arrow, rows = both
    arrow_tables, row_tables = tables(arrow), tables(rows)
    assert arrow_tables.keys() == row_tables.keys()
    for table, (columns, compared, table_rows) in row_tables.items():
        arrow_columns, _, arrow_rows = arrow_tables[table]
        assert arrow_columns == columns, table
        # The same order too, except for variant columns (the Arrow path appends a page's after its other columns).
        assert [c for c in arrow_columns if "__v_" not in c] == [c for c in columns if "__v_" not in c], table
        for arrow_row, row in zip(arrow_rows, table_rows):
            differing = {name: (a, b) for name, a, b in zip(compared, arrow_row, row) if a != b}
            assert not differing, f"{table}, {row}: (Arrow, rows) differ in {differing}"
        assert len(arrow_rows) == len(table_rows), table
    assert schema_columns(arrow, definition) == schema_columns(rows, definition)


def test_list_free_values_load_the_same_through_arrow(kv_state, both, caplog):
    flat_records(kv_state)
    definition = make_definition()
    assert load_both(definition, both, caplog)[0] is False, "the Arrow path shaped every page"
    assert_same(definition, both)
    columns = tables(both[0])["orders_kv"][0]
    assert {"price__v_text", "id__v_double", "created_at__v_text", "value_cf_kv_key",
            "customer__address__city", "odd_field_name"} <= set(columns)
    assert columns["created_at"] == "TIMESTAMP WITH TIME ZONE" and columns["cf_kv_metadata"] == "JSON"


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


def test_merge_runs_keep_the_same_tables_and_replace_child_rows(kv_state, both, caplog):
    definition = make_definition(destination={"write_disposition": "merge"})
    flat_records(kv_state, count=40)
    nested_records(kv_state)
    load_both(definition, both, caplog)
    put(kv_state, "nested:001", {"order_id": "o1", "total": 2.0, "items": [{"sku": "NEW", "quantity": 9}]})
    put(kv_state, "flat:00001", {"id": "now text", "price": True})  # clashes with the stored column types
    load_both(definition, both, caplog)
    assert_same(definition, both)
    _, compared, rows = tables(both[0])["orders_kv__items"]
    items = [dict(zip(compared, row)) for row in rows if row[-2] == "nested:001"]
    assert [(item["sku"], item["quantity"]) for item in items] == [("NEW", 9)]


def test_a_second_list_free_run_types_clashes_against_the_stored_schema(kv_state, both, caplog):
    definition = make_definition(destination={"write_disposition": "append"})
    put(kv_state, "a", {"amount": 1, "when": "2026-11-01T10:00:00+00:00"})
    load_both(definition, both, caplog)
    put(kv_state, "b", {"amount": "not a number", "when": "later", "coupon": "FALL26"})
    assert load_both(definition, both, caplog) == [False, False]
    assert_same(definition, both)
    assert {"amount__v_text", "when__v_text", "coupon"} <= set(tables(both[0])["orders_kv"][0])


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
    assert root_columns["placed_at"] == "TIMESTAMP WITH TIME ZONE" and root_columns["day"] == "VARCHAR"
    assert "count__v_text" in root_columns


def test_the_column_at_a_time_lane_takes_steady_pages_and_leaves_the_rest(kv_state, settings, tmp_path, caplog):
    steady_records(kv_state)
    arrow = dataclasses.replace(settings, data_dir=tmp_path / "arrow", kv_shaping="arrow")
    with caplog.at_level(logging.DEBUG, logger="dlt_platform.source_types.cloudflare_kv"):
        run_load(make_definition(), arrow)
    by_value = [r.getMessage() for r in caplog.records if "shaped value by value" in r.getMessage()]
    # 4 listing pages: the first (new columns) and the third (the clash, a value on two lines, broken JSON) are
    # shaped value by value; the second (non-JSON, binary, scalar and array values among objects) and the fourth not
    assert len(by_value) == 2, by_value
    assert "new column" in by_value[0] and "several lines" in by_value[1]


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
