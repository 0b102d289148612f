"""A D1 database as a dlt source: one resource per table or named query, read in keyset pages (never OFFSET).

The source asks D1 for each table's declared columns when it is built (PRAGMA table_info), so the resource's
column types, primary key and pages follow the table as it is now: a column added since the last run is read
and added to the warehouse table (within the source's schema contract). Types follow SQLite's affinity rules
(columns.py); an incremental table keeps dlt's incremental state on its cursor column.
"""

# No `from __future__ import annotations`: dlt finds a resource's incremental argument by its annotation.
import base64
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Literal, cast

import dlt
import orjson
from dlt.common.schema.typing import TColumnSchema
from dlt.sources import DltResource

from dlt_platform.http import RateBudget
from dlt_platform.load_request import LoadRequest
from dlt_platform.settings import Settings
from dlt_platform.source_types.d1.client import (
    ROWID_COLUMN,
    D1Error,
    D1RestClient,
    D1WorkerClient,
    PageQuery,
    TableInfo,
)
from dlt_platform.source_types.d1.columns import column_plan
from dlt_platform.source_types.d1.definition import (
    ROWID,
    D1Query,
    D1SourceDefinition,
    D1Table,
    loaded_tables,
    warehouse_name,
)

D1Client = D1RestClient | D1WorkerClient


def open_client(definition: D1SourceDefinition, settings: Settings) -> D1Client:
    extract = definition.extract
    if extract.transport == "worker":
        return D1WorkerClient(
            settings.orchestrator_url, settings.internal_token, extract.database_name, policy=settings.retry_policy
        )
    return D1RestClient(
        settings.cloudflare_api_base_url,
        settings.cloudflare_account_id,
        settings.cloudflare_api_token,
        extract.database_id,
        budget=RateBudget(settings.cloudflare_requests_per_window, settings.cloudflare_window_seconds),
        policy=settings.retry_policy,
    )


@dataclasses.dataclass(frozen=True)
class ReadPlan:
    """How one table or query is read and shaped: its pages and its dlt hints."""

    table: str  # the warehouse table (the resource's name)
    page: PageQuery  # the first page (no `after`, no `since`)
    primary_key: list[str]
    columns: dict[str, dict]  # dlt column hints
    hex_as: dict[str, str]  # hex-read column -> "binary" | "text" (base64)
    json_columns: tuple[str, ...]  # JSON text parsed into a json column


def cursor_column(name: str | None) -> str | None:
    return ROWID_COLUMN if name == ROWID else name


def table_plan(item: D1Table, info: TableInfo, page_rows: int, blob_encoding: str) -> ReadPlan:
    declared = info.primary_key
    primary_key = list(item.primary_key or declared)
    missing = [
        name
        for name in [*primary_key, *([item.cursor] if item.cursor not in (None, ROWID) else [])]
        if name not in {column.name for column in info.columns}
    ]
    if missing:
        raise D1Error(
            0,
            f"extract.tables: table '{item.name}' has no column {', '.join(missing)} "
            f"(columns: {', '.join(c.name for c in info.columns)})",
        )
    use_rowid = item.cursor == ROWID or not primary_key
    if use_rowid and not info.has_rowid:
        raise D1Error(0, f"extract.tables: table '{item.name}' is WITHOUT ROWID: name a cursor column of its own")
    key = primary_key or [ROWID_COLUMN]
    cursor = cursor_column(item.cursor)
    order = [cursor, *[name for name in key if name != cursor]] if cursor else key
    if item.cursor == ROWID:
        order = [ROWID_COLUMN]
    plan = column_plan(info.columns, item.columns or {}, blob_encoding)
    hints = dict(plan.hints)
    if use_rowid:
        hints[ROWID_COLUMN] = {"name": ROWID_COLUMN, "data_type": "bigint"}
    page = PageQuery(
        table=item.name,
        columns=[c.name for c in info.columns],
        key=order,
        limit=page_rows,
        hex_columns=list(plan.hex_as),
        rowid=use_rowid,
        cursor=cursor,
    )
    return ReadPlan(warehouse_name(item), page, primary_key or [ROWID_COLUMN], hints, plan.hex_as, plan.json_columns)


def query_plan(item: D1Query, page_rows: int) -> ReadPlan:
    cursor = item.cursor
    order = [cursor, *[name for name in item.primary_key if name != cursor]] if cursor else list(item.primary_key)
    plan = column_plan((), item.columns or {}, "base64")
    page = PageQuery(table=None, sql=item.sql, columns=[], key=order, limit=page_rows, cursor=cursor)
    return ReadPlan(warehouse_name(item), page, list(item.primary_key), dict(plan.hints), {}, plan.json_columns)


def read_plans(definition: D1SourceDefinition, client: D1Client) -> list[ReadPlan]:
    extract = definition.extract
    plans = []
    for item in loaded_tables(definition):
        if isinstance(item, D1Query):
            plans.append(query_plan(item, extract.page_rows))
        else:
            plans.append(table_plan(item, client.table_info(item.name), extract.page_rows, extract.blob_encoding))
    return plans


def shaped_rows(plan: ReadPlan, columns: list[str], rows: list[list]) -> list[dict]:
    """Rows of a page as dicts: hex-read BLOBs decoded, JSON text parsed where the definition asks."""
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    for name, kind in plan.hex_as.items():
        for record in records:
            value = record.get(name)
            if isinstance(value, str):
                raw = bytes.fromhex(value)
                record[name] = raw if kind == "binary" else base64.b64encode(raw).decode("ascii")
    for name in plan.json_columns:
        for record in records:
            value = record.get(name)
            if isinstance(value, str):
                try:
                    record[name] = orjson.loads(value)
                except orjson.JSONDecodeError:
                    pass  # not JSON: kept as the text it is (dlt stores it as a variant column)
    return records


def pages(
    client: D1Client, plan: ReadPlan, since: object, limit: int | None, on_page: Callable[[int], None] | None = None
) -> Iterator[list[dict]]:
    """Keyset pages of a table from `since` (its cursor's lower bound), each strictly after the previous one's last
    key. A page D1 refuses as too large (over its 50 MB result limit) is asked for again at half its rows."""
    page = dataclasses.replace(plan.page, since=since, limit=min(plan.page.limit, client.MAX_PAGE_ROWS))
    remaining = limit
    while True:
        size = page.limit if remaining is None else min(page.limit, remaining)
        try:
            columns, rows = client.page(dataclasses.replace(page, limit=size))
        except D1Error as error:
            if error.result_too_large and page.limit > 1:
                page = dataclasses.replace(page, limit=max(1, page.limit // 2))
                continue
            raise
        if rows:
            records = shaped_rows(plan, columns, rows)
            if on_page is not None:
                on_page(len(records))
            yield records
        if remaining is not None:
            remaining -= len(rows)
        if len(rows) < size or remaining == 0:
            return
        last = dict(zip(columns, rows[-1], strict=True))
        page = dataclasses.replace(page, after=[last[name] for name in page.key])


def d1_rows(
    definition: D1SourceDefinition,
    settings: Settings,
    plan: ReadPlan,
    request: LoadRequest,
    cursor: dlt.sources.incremental[Any] | None = None,
) -> Iterator[list[dict]]:
    client = open_client(definition, settings)
    try:
        since = cursor.last_value if cursor is not None else None
        yield from pages(client, plan, since, request.limit, request.on_page)
    finally:
        client.close()


def table_disposition(
    definition: D1SourceDefinition, item: D1Table | D1Query, request: LoadRequest
) -> Literal["replace", "merge", "append"]:
    """A table's own write disposition (else the destination's); a partial run (a limit) of a replace table merges
    on its key instead (load_request.py's rule, table by table)."""
    from dlt_platform.source_types.d1 import D1_DATABASE

    configured = item.write_disposition or definition.destination.write_disposition
    if configured == "replace" and D1_DATABASE.reads_part_of_source(definition, request):
        return "merge"
    return configured


def d1_resource(
    definition: D1SourceDefinition,
    settings: Settings,
    item: D1Table | D1Query,
    plan: ReadPlan | None,
    request: LoadRequest,
) -> DltResource:
    disposition = table_disposition(definition, item, request)
    if plan is None:  # describing the source (Dagster's assets): nothing is read
        return dlt.resource([], name=warehouse_name(item), write_disposition=disposition)
    resource = dlt.resource(
        d1_rows,
        name=plan.table,
        write_disposition=disposition,
        primary_key=plan.primary_key,
        # The hints' data types are dlt's names (columns.py); dlt checks them when it builds the table schema.
        columns=cast("dict[str, TColumnSchema]", plan.columns),
    )
    incremental: dlt.sources.incremental[Any] | None = None
    if plan.page.cursor is not None:
        incremental = dlt.sources.incremental(plan.page.cursor, on_cursor_value_missing="exclude")
    return resource(definition, settings, plan, request, cursor=incremental)


def d1_source(
    definition: D1SourceDefinition, settings: Settings, request: LoadRequest | None = None, describe_only: bool = False
):
    """The dlt source of a d1 definition (named after the source id). `describe_only`: the resources without
    reading D1 (the Dagster code location describes the assets with it)."""

    request = request or LoadRequest()

    @dlt.source(name=definition.source_id)
    def d1() -> list[DltResource]:
        items = loaded_tables(definition)
        if describe_only:
            return [d1_resource(definition, settings, item, None, request) for item in items]
        client = open_client(definition, settings)
        try:
            plans = read_plans(definition, client)
        finally:
            client.close()
        return [d1_resource(definition, settings, item, plan, request) for item, plan in zip(items, plans, strict=True)]

    return d1()
