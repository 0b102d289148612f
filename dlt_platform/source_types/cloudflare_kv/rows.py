"""Extracted KV record -> warehouse row, as the original platform shapes them.

Every row carries the cf_kv_* audit columns. A JSON-object value is expanded into columns (nested objects become
`parent__child` columns and lists child tables, by dlt's normalizer or by arrow_tables.py). A value field whose
name, once normalised to a column name, equals an audit column is kept as `value_<name>` (`value_value_<name>` if
that is taken too): it never overwrites an audit column and is never dropped. Scalars, arrays, non-JSON text and
binary values are not expanded; their text (or base64) stays in cf_kv_value_raw.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import TYPE_CHECKING

import orjson

from dlt_platform.source_types.columns import expand_fields

if TYPE_CHECKING:  # the CLI's `sample` imports this module without dlt (dlt_platform/cli/__init__.py)
    from dlt.common.schema.typing import TColumnSchema

AUDIT_COLUMNS = (
    "cf_kv_key",
    "cf_kv_namespace_id",
    "cf_kv_namespace_title",
    "cf_kv_metadata",
    "cf_kv_expiration",
    "cf_kv_fetched_at",
    "cf_kv_value_is_json",
    "cf_kv_value_raw",
    "cf_kv_value_encoding",
)
AUDIT_SET = frozenset(AUDIT_COLUMNS)
COLLISION_PREFIX = "value_"

# Column hints: metadata stays one JSON column instead of being flattened; the key is the merge key.
AUDIT_COLUMN_HINTS: dict[str, TColumnSchema] = {
    "cf_kv_key": {"data_type": "text", "nullable": False},
    "cf_kv_namespace_id": {"data_type": "text"},
    "cf_kv_namespace_title": {"data_type": "text"},
    "cf_kv_metadata": {"data_type": "json"},
    "cf_kv_expiration": {"data_type": "bigint"},
    "cf_kv_fetched_at": {"data_type": "timestamp"},
    "cf_kv_value_is_json": {"data_type": "bool"},
    "cf_kv_value_raw": {"data_type": "text"},
    "cf_kv_value_encoding": {"data_type": "text"},
}


@functools.lru_cache(maxsize=16)
def fetched_at_time(text: str) -> dt.datetime:
    # Every record of a page shares one fetched_at: parse it once, not once a row.
    return dt.datetime.fromisoformat(text)


def parsed_value(record: dict) -> tuple[object, bool]:
    """The value as JSON, and whether it is JSON at all (binary values never are)."""
    if record["value_encoding"] != "text":
        return None, False
    raw = record["value"]
    try:
        return orjson.loads(raw), True
    except orjson.JSONDecodeError:
        # orjson refuses what the json module accepts (integers past 64 bits, NaN): ask it too.
        try:
            return json.loads(raw), True
        except ValueError:
            return None, False


def warehouse_row(record: dict, namespace_id: str, namespace_title: str) -> dict:
    """The row an extracted record becomes: its record as read_pages yields it or a snapshot holds it ({key,
    value, value_encoding, metadata, expiration, fetched_at}); the value's fields, then the audit columns."""
    parsed, is_json = parsed_value(record)
    row = expand_fields(parsed, AUDIT_SET, COLLISION_PREFIX) if isinstance(parsed, dict) else {}
    row.update(
        cf_kv_key=record["key"],
        cf_kv_namespace_id=namespace_id,
        cf_kv_namespace_title=namespace_title,
        cf_kv_metadata=record.get("metadata"),
        cf_kv_expiration=record.get("expiration"),
        cf_kv_fetched_at=fetched_at_time(record["fetched_at"]),
        cf_kv_value_is_json=is_json,
        cf_kv_value_raw=record["value"],
        cf_kv_value_encoding=record["value_encoding"],
    )
    return row
