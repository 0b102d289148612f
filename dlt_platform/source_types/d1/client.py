"""Reading a D1 database, one keyset page at a time, over either transport.

A page is asked for as a `PageQuery` (what to read, never SQL from outside): the table (or a named query, REST
only), its columns, the keyset key and where the previous page ended. The REST transport turns it into SQL here
(`page_sql`) and sends it to Cloudflare's `POST /accounts/{account}/d1/database/{database}/raw`; the Worker
transport sends the PageQuery to the orchestrator's `POST /internal/d1/{binding}/page`, which checks every name
against the table's own columns and builds the same SELECT itself (worker/src/d1.ts).

Documented shapes and limits (developers.cloudflare.com/api/.../d1/subresources/database/methods/raw and
/d1/platform/limits): the raw endpoint answers the client/v4 envelope {success, errors: [{code, message}],
messages, result: [{results: {columns, rows}, success, meta}]} with rows as arrays; a query result may hold
50 MB, a query may run 30 s, and take 100 bound parameters; the account's API rate limit answers 429 with
Retry-After. A page D1 refuses as too large is asked for again at half its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

import orjson

from dlt_platform.http import RateBudget, RetryPolicy, http_client, send_with_retries
from dlt_platform.source_types.base import SourceError

MAX_BOUND_PARAMETERS = 100
MAX_RESULT_BYTES = 50 * 1024 * 1024
ROWID_COLUMN = "_d1_rowid"  # the rowid of a table read by rowid, as a column of its rows


class D1Error(SourceError):
    """A D1 call that failed; the message carries D1's own error text, never credentials."""

    def __init__(self, status_code: int, message: str, codes: Sequence[int] = ()) -> None:
        credentials = " (CLOUDFLARE_API_TOKEN)" if status_code in (401, 403) else ""
        super().__init__(f"D1 HTTP {status_code}: {message}{credentials}" if status_code else message)
        self.status_code, self.codes = status_code, tuple(codes)

    @property
    def result_too_large(self) -> bool:
        text = str(self).lower()
        return "too large" in text or "too big" in text or "exceeded" in text and "result" in text


@dataclass(frozen=True)
class Column:
    name: str
    declared_type: str  # as written in CREATE TABLE ("" when none)
    primary_key_position: int  # 1-based position in the PRIMARY KEY, 0 when not part of it
    not_null: bool = False


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: tuple[Column, ...]
    has_rowid: bool  # false for WITHOUT ROWID tables

    @property
    def primary_key(self) -> list[str]:
        keyed = sorted((c for c in self.columns if c.primary_key_position), key=lambda c: c.primary_key_position)
        return [c.name for c in keyed]


@dataclass(frozen=True)
class PageQuery:
    """One keyset page. `key` orders the rows and is unique (the cursor column first, when there is one, then the
    primary key or rowid); `after` is the previous page's last key (strictly after it); `since` the cursor's
    lower bound of an incremental run (at or after it, dlt drops rows it already loaded)."""

    table: str | None  # a D1 table, or None for `sql`
    columns: list[str]  # the table's columns to read (all of a query's)
    key: list[str]
    limit: int
    sql: str | None = None  # a named query (REST only)
    hex_columns: list[str] = field(default_factory=list)  # BLOB columns, read as hex text
    rowid: bool = False  # read the rowid as ROWID_COLUMN (a key of tables without a primary key)
    cursor: str | None = None  # the incremental cursor column (a key column: rows where it is NULL are skipped)
    since: object = None
    after: list | None = None

    def to_json(self) -> dict:
        body = asdict(self)
        body.pop("sql")
        return body


def quoted(name: str) -> str:
    # Names are checked against the definition's pattern (letters, digits, '_') and the table's columns first.
    return '"' + name.replace('"', '""') + '"'


def page_sql(page: PageQuery) -> tuple[str, list]:
    """The SELECT of one page and its bound parameters (the Worker builds the same, worker/src/d1.ts)."""
    select = []
    if page.rowid:
        select.append(f'rowid AS "{ROWID_COLUMN}"')
    for name in page.columns:
        select.append(
            f"CASE WHEN {quoted(name)} IS NULL THEN NULL ELSE hex({quoted(name)}) END AS {quoted(name)}"
            if name in page.hex_columns
            else quoted(name)
        )
    if page.sql is None and page.table is None:
        raise D1Error(0, "a page reads a table or a query")
    source = f"({page.sql})" if page.sql is not None else quoted(page.table or "")
    # The rowid is named as a column of the inner SELECT of a table (ROWID_COLUMN); a query's key is its own.
    key = page.key
    inner = f"SELECT {', '.join(select) if select else '*'} FROM {source}"
    conditions, params = [], []
    if page.cursor is not None:
        conditions.append(f"{quoted(page.cursor)} IS NOT NULL")
    if page.since is not None and page.cursor is not None:
        conditions.append(f"{quoted(page.cursor)} >= ?")
        params.append(page.since)
    if page.after is not None:
        conditions.append(f"({', '.join(map(quoted, key))}) > ({', '.join('?' * len(key))})")
        params.extend(page.after)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT * FROM ({inner}){where} ORDER BY {', '.join(map(quoted, key))} LIMIT ?"
    params.append(page.limit)
    if len(params) > MAX_BOUND_PARAMETERS:
        raise D1Error(
            0,
            f"a page of {page.table or 'a query'} would bind {len(params)} parameters (D1 takes "
            f"{MAX_BOUND_PARAMETERS})",
        )
    return sql, params


TABLES_SQL = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
    "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name"
)


def table_info_from(name: str, create_sql: str | None, rows: list[list]) -> TableInfo:
    """PRAGMA table_info rows (cid, name, type, notnull, dflt_value, pk) of a table."""
    columns = tuple(Column(row[1], row[2] or "", int(row[5] or 0), bool(row[3])) for row in rows)
    has_rowid = "without rowid" not in " ".join((create_sql or "").lower().split())
    return TableInfo(name, columns, has_rowid)


class D1RestClient:
    """Cloudflare's D1 REST API (client/v4): `POST /accounts/{account}/d1/database/{database}/raw`."""

    MAX_PAGE_ROWS = 50_000  # the definition's own bound; D1's 50 MB result limit halves pages past it

    def __init__(
        self,
        base_url: str,
        account_id: str | None,
        api_token: str | None,
        database_id: str,
        budget: RateBudget | None = None,
        policy: RetryPolicy | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not account_id:
            raise D1Error(0, "CLOUDFLARE_ACCOUNT_ID is not set (needed by the d1 rest transport)")
        if not api_token:
            raise D1Error(0, "CLOUDFLARE_API_TOKEN is not set (needed by the d1 rest transport)")
        self.policy, self.budget = policy or RetryPolicy(), budget or RateBudget(1100, 300.0)
        self.path = f"/accounts/{quote(account_id, safe='')}/d1/database/{quote(database_id, safe='')}/raw"
        self._http = http_client(
            base_url=base_url.rstrip("/"), timeout=timeout, headers={"Authorization": f"Bearer {api_token}"}
        )

    def close(self) -> None:
        self._http.close()

    def raw(self, sql: str, params: list | None = None) -> tuple[list[str], list[list]]:
        """Columns and rows (arrays) of one statement."""
        request = self._http.build_request("POST", self.path, json={"sql": sql, "params": params or []})
        response = send_with_retries(self._http, request, self.policy, self.budget)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise D1Error(response.status_code, response.reason_phrase or "not JSON") from None
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if response.status_code >= 400 or not body.get("success", False):
            text = "; ".join(f"{e.get('message')} (code {e.get('code')})" for e in errors) or response.reason_phrase
            raise D1Error(response.status_code, text, [e["code"] for e in errors if isinstance(e.get("code"), int)])
        result = body["result"][0]
        if not result.get("success", True):
            raise D1Error(response.status_code, "the statement failed")
        results = result.get("results") or {}
        return results.get("columns") or [], results.get("rows") or []

    def tables(self) -> list[str]:
        return [row[0] for row in self.raw(TABLES_SQL)[1]]

    def table_info(self, table: str) -> TableInfo:
        _, found = self.raw("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
        if not found:
            raise D1Error(0, f"no such table: {table} in the D1 database")
        _, rows = self.raw(f"PRAGMA table_info({quoted(table)})")
        return table_info_from(table, found[0][0], rows)

    def page(self, page: PageQuery) -> tuple[list[str], list[list]]:
        return self.raw(*page_sql(page))


class D1WorkerClient:
    """The orchestrator Worker's `/internal/d1/{binding}` routes, read through its D1 binding."""

    MAX_PAGE_ROWS = 5000  # the Worker's own bound on a page (worker/src/d1.ts MAX_PAGE_ROWS)

    def __init__(
        self,
        orchestrator_url: str | None,
        internal_token: str | None,
        binding: str,
        policy: RetryPolicy | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not orchestrator_url:
            raise D1Error(0, "DLT_ORCHESTRATOR_URL is not set (needed by the d1 worker transport)")
        if not internal_token:
            raise D1Error(0, "DLT_INTERNAL_TOKEN is not set (needed by the d1 worker transport)")
        self.binding, self.policy = binding, policy or RetryPolicy()
        self._http = http_client(
            base_url=orchestrator_url, timeout=timeout, headers={"Authorization": f"Bearer {internal_token}"}
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = self._http.build_request(method, f"/internal/d1/{quote(self.binding, safe='')}{path}", json=body)
        response = send_with_retries(self._http, request, self.policy)
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.reason_phrase
            raise D1Error(response.status_code, f"orchestrator: {message}")
        return orjson.loads(response.content)

    def tables(self) -> list[str]:
        return [table["name"] for table in self._call("GET", "/tables")["tables"]]

    def table_info(self, table: str) -> TableInfo:
        body = self._call("GET", f"/tables/{quote(table, safe='')}")
        columns = tuple(Column(c["name"], c["type"], c["pk"], c["notnull"]) for c in body["columns"])
        return TableInfo(table, columns, body["has_rowid"])

    def page(self, page: PageQuery) -> tuple[list[str], list[list]]:
        if page.sql is not None:
            raise D1Error(0, "queries need transport rest: the Worker runs no SQL it is sent")
        body = self._call("POST", "/page", page.to_json())
        return body["columns"], body["rows"]
