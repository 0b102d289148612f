"""d1 sources over Cloudflare's D1 REST API (played on loopback over real SQLite) into DuckDB and the emulated
BigQuery: incremental loads that move only changed rows, merge with one row per key, SQLite's types, a schema
change, deleted rows and full refresh, named queries, and the API's documented errors."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from dlt_platform.load_request import LoadRequest
from dlt_platform.loads import run_load
from dlt_platform.source_types.d1.client import D1Error

from .bigquery_fixtures import DuckDBWarehouse, bigquery_settings
from .d1_fixtures import DATABASE_ID, USER_INSERT, d1_definition, user_row

USERS = 50_000


@pytest.fixture(params=["duckdb", "bigquery"])
def lane(request, d1_settings):
    if request.param == "bigquery":
        warehouse = request.getfixturevalue("bigquery_warehouse")
        return bigquery_settings(d1_settings, warehouse.emulator), warehouse
    return d1_settings, DuckDBWarehouse(d1_settings)


def test_an_incremental_merge_moves_only_changed_rows_and_keeps_one_row_per_key(d1_state, lane):
    settings, warehouse = lane
    d1_state.executemany(DATABASE_ID, USER_INSERT, (user_row(i) for i in range(1, USERS + 1)))
    definition = d1_definition(page_rows=5000)

    first = run_load(definition, settings)
    assert first.rows_by_table == {"users": USERS}
    assert warehouse.query("select count(*), count(distinct id) from app.users") == [(USERS, USERS)]

    # The application changes 10 rows and adds 5.
    for index in range(1, 11):
        d1_state.execute(DATABASE_ID, "UPDATE users SET email = ?, updated_at = ? WHERE id = ?",
                         (f"changed{index}@example.com", "2026-02-01T00:00:00Z", index))
    d1_state.executemany(DATABASE_ID, USER_INSERT,
                         (user_row(i, "2026-02-02T00:00:00Z") for i in range(USERS + 1, USERS + 6)))
    d1_state.statements.clear()

    second = run_load(definition, settings)
    assert second.rows_by_table == {"users": 15}
    assert warehouse.query("select count(*), count(distinct id) from app.users") == [(USERS + 5, USERS + 5)]
    assert warehouse.query("select email from app.users where id = 3") == [("changed3@example.com",)]
    # Keyset pages from the last cursor: the second run asked D1 for the new rows only, never with OFFSET.
    page_statements = [sql for sql in d1_state.statements if sql.startswith("SELECT * FROM (SELECT")]
    assert page_statements and all(">= ?" in sql for sql in page_statements)
    assert not any("offset" in sql.lower() for sql in page_statements)


def test_sqlite_types_follow_declared_types_and_the_definitions_overrides(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(1), user_row(2)])
    warehouse = DuckDBWarehouse(d1_settings)
    run_load(d1_definition([{"name": "users", "cursor": "updated_at",
                              "columns": {"profile": "json", "updated_at": "timestamp"}}]), d1_settings)
    types = dict(warehouse.query("select column_name, data_type from information_schema.columns "
                                 "where table_schema = 'app' and table_name = 'users'"))
    assert types["id"] == "BIGINT" and types["score"] == "DOUBLE" and types["email"] == "VARCHAR"
    assert types["balance"].startswith("DECIMAL") and types["active"] == "BOOLEAN"
    assert types["signed_up"] == "VARCHAR"  # a date stored as TEXT stays text unless the definition says so
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["profile"] == "JSON" and types["avatar"] == "VARCHAR"  # BLOB as base64 text by default
    (row,) = warehouse.query("select avatar, profile->>'plan', active, balance from app.users where id = 2")
    assert base64.b64decode(row[0]) == bytes([2, 0, 255])
    assert row[1:] == ("free", False, pytest.approx(2.25))


def test_blobs_load_as_bytes_when_asked_and_json_text_stays_text_unless_asked(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(7)])
    run_load(d1_definition([{"name": "users"}], blob_encoding="bytes"), d1_settings)
    warehouse = DuckDBWarehouse(d1_settings)
    assert warehouse.query("select avatar, profile from app.users") == [
        (bytes([7, 0, 255]), '{"plan": "free", "seats": 0}')]
    assert warehouse.query("select data_type from information_schema.columns where table_schema = 'app' "
                           "and table_name = 'users' and column_name = 'profile'") == [("VARCHAR",)]


def test_a_new_column_in_d1_is_added_to_the_warehouse_table(d1_state, lane):
    settings, warehouse = lane
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(1)])
    definition = d1_definition()
    run_load(definition, settings)
    d1_state.execute(DATABASE_ID, "ALTER TABLE users ADD COLUMN country TEXT")
    d1_state.execute(DATABASE_ID, "UPDATE users SET country = 'NZ', updated_at = '2026-03-01T00:00:00Z'")
    assert run_load(definition, settings).rows_by_table == {"users": 1}
    assert warehouse.query("select id, country from app.users") == [(1, "NZ")]


def test_a_deleted_row_stays_until_a_full_refresh(d1_state, lane):
    settings, warehouse = lane
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(i) for i in range(1, 4)])
    definition = d1_definition()
    run_load(definition, settings)
    d1_state.execute(DATABASE_ID, "DELETE FROM users WHERE id = 2")
    # A cursor sees rows that changed, not rows that are gone.
    assert run_load(definition, settings).rows_by_table == {}
    assert warehouse.query("select id from app.users order by id") == [(1,), (2,), (3,)]
    assert run_load(definition, settings, LoadRequest(full_refresh=True)).rows_by_table == {"users": 2}
    assert warehouse.query("select id from app.users order by id") == [(1,), (3,)]


def test_an_append_only_table_read_by_rowid_appends_new_rows_only(d1_state, lane):
    settings, warehouse = lane
    d1_state.executemany(DATABASE_ID, "INSERT INTO events VALUES (?, ?)", [("signup", "{}")] * 3)
    definition = d1_definition([{"name": "events", "cursor": "rowid", "write_disposition": "append"}], page_rows=2)
    run_load(definition, settings)
    d1_state.executemany(DATABASE_ID, "INSERT INTO events VALUES (?, ?)", [("login", "{}")] * 2)
    assert run_load(definition, settings).rows_by_table == {"events": 2}
    assert warehouse.query("select _d1_rowid, kind from app.events order by 1") == [
        (1, "signup"), (2, "signup"), (3, "signup"), (4, "login"), (5, "login")]


def test_a_table_without_a_primary_key_merges_on_its_rowid(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, "INSERT INTO events VALUES (?, ?)", [("a", "1"), ("b", "2")])
    definition = d1_definition([{"name": "events"}])
    run_load(definition, d1_settings)
    d1_state.execute(DATABASE_ID, "UPDATE events SET payload = '3' WHERE kind = 'b'")
    run_load(definition, d1_settings)
    assert DuckDBWarehouse(d1_settings).query("select _d1_rowid, payload from app.events order by 1") == [
        (1, "1"), (2, "3")]


def test_a_named_query_becomes_a_table_read_in_keyset_pages(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(i) for i in range(1, 21)])
    definition = d1_definition([], [{"name": "pro_users", "primary_key": ["id"],
                                     "sql": "SELECT id, email, json_extract(profile, '$.seats') AS seats FROM users "
                                            "WHERE json_extract(profile, '$.plan') = 'pro'"}], page_rows=2)
    assert run_load(definition, d1_settings).rows_by_table == {"pro_users": 6}
    assert DuckDBWarehouse(d1_settings).query("select id, seats from app.pro_users order by id")[:2] == [(3, 3), (6, 6)]
    assert sum(1 for sql in d1_state.statements if "json_extract" in sql) == 4  # 3 full pages and the empty end


def test_a_limited_run_reads_that_many_rows_and_merges(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(i) for i in range(1, 11)])
    definition = d1_definition([{"name": "users", "write_disposition": "replace"}], page_rows=3)
    result = run_load(definition, d1_settings, LoadRequest(limit=4))
    assert result.rows_by_table == {"users": 4} and result.write_disposition == "merge"


def test_a_missing_table_fails_in_one_line_naming_it(d1_settings):
    with pytest.raises(Exception) as failure:
        run_load(d1_definition([{"name": "invoices"}]), d1_settings)
    assert "no such table: invoices" in str(failure.value) and "\n" not in str(failure.value)


def test_429_waits_as_long_as_retry_after_says(d1_state, d1_settings, sleeps):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(1)])
    d1_state.fail_next(429, times=2, retry_after=7)
    assert run_load(d1_definition(), d1_settings).rows_by_table == {"users": 1}
    assert sleeps[:2] == [7.0, 7.0]


def test_a_page_over_the_result_limit_is_read_again_in_halves(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(i) for i in range(1, 101)])
    d1_state.max_result_bytes = 8_000  # about 25 users' rows
    result = run_load(d1_definition(page_rows=100), d1_settings)
    assert result.rows_by_table == {"users": 100}
    limits = [params[-1] for sql, params in zip(d1_state.statements, d1_state.parameters, strict=True)
              if sql.startswith("SELECT * FROM (SELECT")]
    # 100 rows are refused, 50 are not: the rest of the run reads 50 a page.
    assert limits[0] == 100 and set(limits[1:]) == {50}


def test_a_result_over_the_limit_at_one_row_fails_naming_the_limit(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(1)])
    d1_state.max_result_bytes = 10
    with pytest.raises(Exception) as failure:
        run_load(d1_definition(), d1_settings)
    assert "result too large" in str(failure.value).lower()
    assert isinstance(failure.value, D1Error) or isinstance(failure.value.__cause__, D1Error)


def test_the_api_token_never_reaches_an_error(d1_state, d1_settings):
    wrong = dataclasses.replace(d1_settings, cloudflare_api_token="wrong-token-value")
    with pytest.raises(Exception) as failure:
        run_load(d1_definition(), wrong)
    assert "HTTP 403" in str(failure.value) and "CLOUDFLARE_API_TOKEN" in str(failure.value)
    assert "wrong-token-value" not in str(failure.value)
    assert json.dumps(str(failure.value))


def test_each_table_keeps_its_own_write_disposition(d1_state, d1_settings):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(i) for i in range(1, 4)])
    d1_state.executemany(DATABASE_ID, "INSERT INTO events VALUES (?, ?)", [("a", "1"), ("b", "2")])
    # The destination merges; events replaces: a whole run replaces it, a limited run merges into it.
    definition = d1_definition([{"name": "users", "cursor": "updated_at"},
                                {"name": "events", "write_disposition": "replace"}])
    warehouse = DuckDBWarehouse(d1_settings)
    run_load(definition, d1_settings)
    d1_state.execute(DATABASE_ID, "DELETE FROM events WHERE kind = 'a'")
    run_load(definition, d1_settings)
    assert warehouse.query("select kind from app.events") == [("b",)]
    d1_state.execute(DATABASE_ID, "INSERT INTO events VALUES ('c', '3')")
    run_load(definition, d1_settings, LoadRequest(limit=1))
    assert warehouse.query("select kind from app.events order by 1") == [("b",)]
