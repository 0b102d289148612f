"""A loopback stand-in for Cloudflare's D1 REST API (client/v4), for the tests and the load benchmark.

`POST /accounts/{account}/d1/database/{database}/raw` runs the statement on a real SQLite database (D1 is
SQLite) and answers the documented shape: the {success, errors: [{code, message}], messages, result} envelope,
`result` one entry per statement with `results: {columns, rows}` (rows as arrays), `success` and `meta`. It
keeps D1's documented limits: 100 bound parameters, 100 KB of SQL, a result of at most `max_result_bytes`
(50 MB; tests lower it) refused with an error; bearer-token auth (403, code 10000); an unknown database 404
(code 7404). SQLite's errors come back as D1 words them ("no such table: x: SQLITE_ERROR", code 7500).
`fail_next()` injects 429 (with Retry-After) or 5xx answers, as the account's API rate limit does.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Self
from urllib.parse import unquote, urlsplit

import orjson

from dlt_platform.local.loopback import JSONHandler, LoopbackServer

MAX_BOUND_PARAMETERS = 100
MAX_SQL_BYTES = 100_000
MAX_RESULT_BYTES = 50 * 1024 * 1024


@dataclass
class Fault:
    status: int
    retry_after: int | None = None


class D1ApiState:
    def __init__(self, account_id: str, token: str, max_result_bytes: int = MAX_RESULT_BYTES) -> None:
        self.account_id, self.token, self.max_result_bytes = account_id, token, max_result_bytes
        self.databases: dict[str, sqlite3.Connection] = {}
        self.faults: list[Fault] = []
        self.statements: list[str] = []  # every SQL statement received, in order
        self.parameters: list[list] = []  # and its bound parameters
        self.lock = threading.Lock()

    def add_database(self, database_id: str, path: str = ":memory:") -> sqlite3.Connection:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.databases[database_id] = connection
        return connection

    def execute(self, database_id: str, sql: str, params: tuple = ()) -> None:
        """Change the database as an application would (tests create, change and delete rows)."""
        with self.lock:
            self.databases[database_id].execute(sql, params)

    def executemany(self, database_id: str, sql: str, rows) -> None:
        with self.lock:
            connection = self.databases[database_id]
            connection.execute("BEGIN")
            connection.executemany(sql, rows)
            connection.execute("COMMIT")

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        with self.lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(times))


def _envelope(result, success: bool = True, errors: list | None = None) -> dict:
    return {"result": result, "success": success, "errors": errors or [], "messages": []}


def _json_value(value):
    # workerd hands BLOBs to JavaScript as arrays of byte values; JSON has no bytes.
    return list(value) if isinstance(value, bytes) else value


class _Handler(JSONHandler):
    server: LoopbackServer

    def _error(self, status: int, code: int, message: str, headers: dict | None = None) -> None:
        self.send_body(
            status, _envelope([] if status == 400 else None, False, [{"code": code, "message": message}]), headers
        )

    def do_POST(self) -> None:
        state: D1ApiState = self.server.owner
        body = self.read_body()
        with state.lock:
            fault = state.faults.pop(0) if state.faults else None
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.status == 429:
                return self._error(429, 971, "Please wait and consider throttling your request speed", headers)
            return self._error(fault.status, 7500, "Internal error", headers)
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            return self._error(403, 10000, "Authentication error")
        parts = urlsplit(self.path).path.split("/")
        if parts[:4] == ["", "client", "v4", "accounts"]:
            parts = ["", "accounts", *parts[4:]]
        if (
            len(parts) != 7
            or parts[1] != "accounts"
            or unquote(parts[2]) != state.account_id
            or parts[3:5] != ["d1", "database"]
            or parts[6] != "raw"
        ):
            return self._error(404, 7003, "Could not route to the requested resource")
        connection = state.databases.get(unquote(parts[5]))
        if connection is None:
            return self._error(404, 7404, "The database could not be found")
        try:
            request = orjson.loads(body)
            sql, params = request["sql"], request.get("params") or []
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._error(400, 7400, "The request is malformed: sql is required")
        if len(sql.encode()) > MAX_SQL_BYTES:
            return self._error(400, 7500, "SQL statement too long: SQLITE_TOOBIG")
        if len(params) > MAX_BOUND_PARAMETERS:
            return self._error(400, 7500, "too many SQL variables: SQLITE_ERROR")
        with state.lock:
            state.statements.append(sql)
            state.parameters.append(params)
            try:
                cursor = connection.execute(sql, params)
                columns = [d[0] for d in cursor.description or []]
                rows = [[_json_value(v) for v in row] for row in cursor.fetchall()]
            except sqlite3.Error as error:
                return self._error(400, 7500, f"{error}: SQLITE_ERROR")
        results = {"columns": columns, "rows": rows}
        encoded = orjson.dumps(results)
        if len(encoded) > state.max_result_bytes:
            return self._error(400, 7500, "D1 result too large: the query result exceeds the result size limit")
        meta = {
            "changed_db": False,
            "changes": 0,
            "duration": 0.1,
            "last_row_id": 0,
            "rows_read": len(rows),
            "rows_written": 0,
            "size_after": 0,
        }
        self.send_body(200, _envelope([{"results": results, "success": True, "meta": meta}]))


class D1ApiServer:
    """Serve `state` on 127.0.0.1 in a background thread; `base_url` is what CLOUDFLARE_API_BASE_URL takes."""

    def __init__(self, state: D1ApiState, port: int = 0) -> None:
        self.state = state
        self._server = LoopbackServer(_Handler, state, port)

    @property
    def base_url(self) -> str:
        return f"{self._server.url}/client/v4"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()


# The local stack's sample application (`dlt-platform up`): its tables in the local D1 the Worker binds, read by
# the sample source d1_sample_app through the Worker (config/sources.json). wrangler dev has one D1 binding, DB
# (the ledger); the app's tables live beside the ledger's there, locally only: a deployed d1 source reads its
# application's own database, over REST or a binding of its own.
SAMPLE_APP_USERS, SAMPLE_APP_ORDERS = 2_000, 8_000


def sample_app_sql() -> str:
    """Idempotent SQL creating and filling the sample app's tables (the same rows every time)."""
    return f"""
CREATE TABLE IF NOT EXISTS app_users (
  id INTEGER PRIMARY KEY, email TEXT NOT NULL, plan TEXT NOT NULL, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS app_users_updated ON app_users (updated_at);
CREATE TABLE IF NOT EXISTS app_orders (
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES app_users (id), total_cents INTEGER NOT NULL,
  currency TEXT NOT NULL, status TEXT NOT NULL, items TEXT NOT NULL, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS app_orders_updated ON app_orders (updated_at);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SAMPLE_APP_USERS})
INSERT OR IGNORE INTO app_users
  SELECT i, 'user' || i || '@example.com', CASE i % 3 WHEN 0 THEN 'pro' ELSE 'free' END,
         strftime('%Y-%m-%dT%H:%M:%SZ', '2026-01-01', '+' || i || ' minutes'),
         strftime('%Y-%m-%dT%H:%M:%SZ', '2026-01-01', '+' || i || ' minutes') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SAMPLE_APP_ORDERS})
INSERT OR IGNORE INTO app_orders
  SELECT i, (i % {SAMPLE_APP_USERS}) + 1, 500 + (i * 37) % 20000, 'USD',
         CASE i % 10 WHEN 0 THEN 'refunded' ELSE 'paid' END,
         json_array(json_object('sku', 'SKU-' || (i % 50), 'quantity', 1 + i % 3)),
         strftime('%Y-%m-%dT%H:%M:%SZ', '2026-02-01', '+' || i || ' minutes'),
         strftime('%Y-%m-%dT%H:%M:%SZ', '2026-02-01', '+' || i || ' minutes') FROM n;
"""
