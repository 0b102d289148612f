"""Warehouse types of D1 columns, from SQLite's declared types and affinity rules (sqlite.org/datatype3.html,
"Determination Of Column Affinity"), and the definition's overrides.

    declared type contains  affinity   loaded as
    INT                     INTEGER    bigint
    CHAR, CLOB, TEXT        TEXT       text (dates stored as TEXT stay text unless the definition says otherwise)
    BLOB                    BLOB       base64 text, or bytes (extract.blob_encoding); read as hex from D1
    (nothing declared)      BLOB       no hint: whatever the values are (dlt infers)
    REAL, FLOA, DOUB        REAL       double
    anything else           NUMERIC    decimal; BOOL... as bool; DATE/TIME... as text (SQLite keeps them as text)

A definition's `columns` names other types ("timestamp", "date", "json", ...); "json" parses the JSON text.
SQLite types values, not columns, so a value that does not fit its column's type is kept by dlt as a variant
column (`<name>__v_<type>`), never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def affinity(declared: str) -> str:
    text = declared.upper()
    if "INT" in text:
        return "INTEGER"
    if any(part in text for part in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in text or not text.strip():
        return "BLOB"
    if any(part in text for part in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def declared_data_type(declared: str, blob_encoding: str) -> str | None:
    kind = affinity(declared)
    text = declared.upper()
    if kind == "INTEGER":
        return "bigint"
    if kind == "TEXT":
        return "text"
    if kind == "REAL":
        return "double"
    if kind == "BLOB":
        if not text.strip():
            return None
        return "binary" if blob_encoding == "bytes" else "text"
    if "BOOL" in text:
        return "bool"
    if "DATE" in text or "TIME" in text:
        return "text"
    return "decimal"


@dataclass(frozen=True)
class ColumnPlan:
    hints: dict[str, dict]
    hex_as: dict[str, str]  # columns read as hex -> "binary" (bytes) | "text" (base64)
    json_columns: tuple[str, ...]


def column_plan(columns: Iterable, overrides: Mapping[str, str], blob_encoding: str) -> ColumnPlan:
    """dlt column hints of a table's columns (`Column`s; none for a query) with the definition's overrides."""
    hints: dict[str, dict] = {}
    hex_as: dict[str, str] = {}
    for column in columns:
        data_type = declared_data_type(column.declared_type, blob_encoding)
        blob = affinity(column.declared_type) == "BLOB" and column.declared_type.strip()
        override = overrides.get(column.name)
        if override is not None:
            data_type = override
        if blob or override == "binary":
            hex_as[column.name] = "binary" if data_type == "binary" else "text"
        if data_type is not None:
            hints[column.name] = {"name": column.name, "data_type": data_type}
    for name, data_type in overrides.items():
        hints.setdefault(name, {"name": name, "data_type": data_type})
    json_columns = tuple(name for name, data_type in overrides.items() if data_type == "json")
    return ColumnPlan(hints, hex_as, json_columns)
