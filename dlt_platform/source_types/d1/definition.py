"""The definition of a d1 source: tables of one Cloudflare D1 database (or named SELECT queries over it), one
warehouse table each, read a keyset page at a time over Cloudflare's REST API or the Worker's D1 binding."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.json_schema import JsonDict

from dlt_platform.definition_base import SourceBase, Staging, StrictModel, WarehouseDestination, whole_number

# SQLite identifiers the platform quotes itself: letters, digits and '_' only, so no quoting trick reaches SQL.
# (SQLite's and D1's own tables, sqlite_* and _cf_*, are never read: the Worker lists user tables only.)
D1_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
D1_NAME_MESSAGE = "must be a SQLite name of letters, digits and '_' (at most 63), not starting with a digit"
# The table a query becomes: a warehouse table name as dlt keeps it.
D1_TABLE_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
DATABASE_ID_PATTERN = r"^[0-9a-fA-F\-]{32,36}$"
# The Worker's binding name of the database (wrangler.toml [[d1_databases]] binding).
BINDING_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
# One SELECT (or WITH ... SELECT) statement: no statement separator; a trailing one is refused too, since the
# platform wraps the query in its own keyset SELECT.
QUERY_PATTERN = r"^\s*([Ss][Ee][Ll][Ee][Cc][Tt]|[Ww][Ii][Tt][Hh])\s[^;]*$"
QUERY_MESSAGE = "must be one SELECT statement (SELECT or WITH ..., no ';')"
MAX_QUERY_CHARS = 20_000  # D1 takes 100 KB of SQL; the keyset wrapper adds little
ROWID = "rowid"

ColumnName = Annotated[str, Field(pattern=D1_NAME_PATTERN, json_schema_extra={"x-message": D1_NAME_MESSAGE})]
CursorName = Annotated[str, Field(pattern=D1_NAME_PATTERN, json_schema_extra={"x-message": D1_NAME_MESSAGE})]
D1PrimaryKey = Annotated[list[ColumnName], Field(min_length=1, max_length=8, json_schema_extra={"uniqueItems": True})]
ColumnType = Literal["text", "bigint", "double", "decimal", "bool", "timestamp", "date", "json", "binary"]


class D1TableBase(StrictModel):
    """What a table and a query share: how its rows are written and read."""

    primary_key: D1PrimaryKey | None = Field(
        None, description="Merge key and keyset tie-break; default: the table's own PRIMARY KEY (its rowid if none)."
    )
    write_disposition: Literal["replace", "merge", "append"] | None = Field(
        None, description="Default: destination.write_disposition."
    )
    cursor: CursorName | None = Field(
        None,
        description="Incremental cursor column (e.g. updated_at, or rowid for append-only tables): a run reads "
        "rows whose cursor is at or after the last run's. Rows deleted in D1 are not seen.",
    )
    columns: dict[ColumnName, ColumnType] | None = Field(
        None,
        max_length=100,
        description="Column types that override those read from SQLite's declared types, e.g. "
        '{"created_at": "timestamp", "payload": "json"}: dates stored as TEXT stay text and '
        "JSON text stays text unless named here.",
    )


class D1Table(D1TableBase):
    name: Annotated[
        str,
        Field(
            pattern=D1_NAME_PATTERN,
            json_schema_extra={"x-message": D1_NAME_MESSAGE},
            description="The D1 table; its warehouse table takes dlt's form of the name.",
        ),
    ]


class D1Query(D1TableBase):
    """A named SELECT whose rows become a table (REST transport only: the Worker never runs SQL it is sent)."""

    name: Annotated[str, Field(pattern=D1_TABLE_PATTERN, description="The warehouse table the query's rows land in.")]
    sql: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            pattern=QUERY_PATTERN,
            json_schema_extra={"x-message": QUERY_MESSAGE},
        ),
    ]
    primary_key: D1PrimaryKey = Field(
        ..., description="Columns of the query that identify a row: keyset pages and merges use them."
    )

    @field_validator("sql", mode="before")
    @classmethod
    def _one_select(cls, value: object) -> object:
        if isinstance(value, str) and not re.fullmatch(QUERY_PATTERN, value):
            raise ValueError(QUERY_MESSAGE)
        return value

    @field_validator("cursor")
    @classmethod
    def _no_rowid(cls, value: str | None) -> str | None:
        if value == ROWID:
            raise ValueError("a query has no rowid: name one of its columns")
        return value


# Queries are SQL sent to D1 as written: only the REST transport runs them.
QUERIES_NEED_REST = "queries need transport rest: the Worker builds its own SELECTs and runs no SQL it is sent"
_QUERIES_NEED_REST: JsonDict = {
    "if": {"required": ["transport"], "properties": {"transport": {"const": "worker"}}},
    "then": {"properties": {"queries": {"type": "null", "x-message": QUERIES_NEED_REST}}},
}


class D1Extract(StrictModel):
    model_config = ConfigDict(json_schema_extra=_QUERIES_NEED_REST)

    database_id: Annotated[
        str, Field(pattern=DATABASE_ID_PATTERN, description="The D1 database's UUID (REST transport).")
    ]
    database_name: Annotated[
        str,
        Field(
            pattern=BINDING_PATTERN, description="The database's name; the Worker's D1 binding name (worker transport)."
        ),
    ]
    transport: Literal["rest", "worker"] = Field(
        "rest",
        description="rest: Cloudflare's D1 REST API with an API token; worker: the orchestrator's "
        "/internal/d1 pages over its D1 binding.",
    )
    tables: list[D1Table] = Field(default_factory=list, max_length=100, description="Tables loaded as they are.")
    queries: list[D1Query] | None = Field(
        None,
        max_length=50,
        validate_default=True,
        description="Named SELECTs, each loaded as a table (transport rest).",
    )
    page_rows: Annotated[int, Field(ge=1, le=50_000), BeforeValidator(whole_number)] = Field(
        5000, description="Rows per page at most; a page D1 refuses as too large is halved."
    )
    blob_encoding: Literal["base64", "bytes"] = Field(
        "base64", description="BLOB columns as base64 text, or as bytes (a binary column)."
    )

    @field_validator("queries")
    @classmethod
    def _tables_named_once(cls, queries: list[D1Query] | None, info: ValidationInfo) -> list[D1Query] | None:
        tables = info.data.get("tables") or []
        if info.data.get("transport") == "worker" and queries is not None:
            raise ValueError(QUERIES_NEED_REST)
        names = [table.name.lower() for table in tables] + [query.name for query in queries or []]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tables and queries must name distinct tables: {', '.join(duplicates)} twice")
        if not names:
            raise ValueError("give at least one table or query")
        return queries


class D1Staging(Staging):
    """A d1 source keeps no raw snapshot: the rows stay in D1, and a full refresh reads them again."""

    model_config = ConfigDict(json_schema_extra=None)  # no snapshot, so no rule about its prefix

    raw_snapshot: Literal[False] = Field(False, description="Always false for d1 sources.")
    r2_prefix: None = Field(None, description="d1 sources keep no snapshots.")


class D1SourceDefinition(SourceBase):
    """Tables of a Cloudflare D1 database (or named queries over it), one warehouse table each."""

    source_type: Literal["d1"]
    destination: WarehouseDestination
    staging: D1Staging = Field(default_factory=D1Staging)
    extract: D1Extract

    @field_validator("extract")
    @classmethod
    def _rules_per_table(cls, extract: D1Extract, info: ValidationInfo) -> D1Extract:
        destination = info.data.get("destination")
        default = destination.write_disposition if destination is not None else "replace"
        items: list[tuple[str, int, D1Table | D1Query]] = [
            *(("tables", index, table) for index, table in enumerate(extract.tables)),
            *(("queries", index, query) for index, query in enumerate(extract.queries or [])),
        ]
        for kind, index, item in items:
            if item.cursor is not None and (item.write_disposition or default) == "replace":
                raise ValueError(
                    f"{kind}.{index}: table '{item.name}' has a cursor but replaces: an incremental "
                    "run reads only new rows, so give write_disposition merge or append"
                )
        return extract


def loaded_tables(definition: D1SourceDefinition) -> list[D1Table | D1Query]:
    return [*definition.extract.tables, *(definition.extract.queries or [])]


def warehouse_name(item: D1Table | D1Query) -> str:
    """The warehouse table of a D1 table or query (dlt's snake_case of the name)."""
    from dlt_platform.source_types.columns import column_name

    return column_name(item.name)
