"""The keyset pages both transports build (dlt_platform/source_types/d1/page_cases.json): the REST transport's
SELECT here, the Worker's in worker/test/d1.test.ts; a change to one builder fails until the other agrees.
Each case's SELECT is also run on SQLite, so the cases are SQL D1 accepts."""

import json
import sqlite3
from pathlib import Path

import pytest

from dlt_platform.source_types.d1.client import PageQuery, page_sql

CASES = json.loads((Path(__file__).parents[1] / "dlt_platform/source_types/d1/page_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_the_rest_transport_builds_each_page_as_the_cases_say(case):
    assert page_sql(PageQuery(**case["page"])) == (case["sql"], case["params"])


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_each_page_is_a_select_sqlite_runs(case):
    database = sqlite3.connect(":memory:")
    database.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, avatar BLOB, updated_at TEXT);
        CREATE TABLE events (kind TEXT, payload TEXT);
        CREATE TABLE order_items (order_id INTEGER, sku TEXT, quantity INTEGER, PRIMARY KEY (order_id, sku));
    """)
    database.execute(case["sql"], case["params"]).fetchall()


def test_a_page_never_skips_or_repeats_a_row():
    database = sqlite3.connect(":memory:")
    database.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, updated_at TEXT)")
    database.executemany("INSERT INTO users VALUES (?, ?, ?)",
                         [(i, f"u{i}", f"2026-01-0{i % 3 + 1}") for i in range(1, 101)])
    page = PageQuery(table="users", columns=["id", "email", "updated_at"], key=["updated_at", "id"], limit=7,
                     cursor="updated_at")
    seen: list[int] = []
    while True:
        rows = database.execute(*page_sql(page)).fetchall()
        seen.extend(row[0] for row in rows)
        if len(rows) < page.limit:
            break
        page = PageQuery(**{**page.__dict__, "after": [rows[-1][2], rows[-1][0]]})
    assert sorted(seen) == list(range(1, 101)) and len(seen) == 100
