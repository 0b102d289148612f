"""KV record -> warehouse row, as the original platform shapes them.

Every row carries the cf_kv_* audit columns. A JSON-object value is expanded into columns (dlt flattens
nested objects into `parent__child` columns and lists into child tables). A value field whose name, once
normalised to a column name, equals an audit column is kept as `value_<name>` (`value_value_<name>` if that
is taken too): it never overwrites an audit column and is never dropped. Scalars, arrays, non-JSON text and
binary values are not expanded; their text (or base64) stays in cf_kv_value_raw.
"""

from __future__ import annotations

import datetime as dt
import json

import orjson

from dlt_platform.sources.cloudflare_kv.transports import KVRecord
from dlt_platform.sources.columns import expand_fields

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
AUDIT_COLUMN_HINTS = {
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


def shape_row(record: KVRecord, namespace_id: str, namespace_title: str, fetched_at: dt.datetime) -> dict:
    raw = record["value"]
    parsed: object = None
    is_json = False
    if record["value_encoding"] == "text":
        try:
            parsed = orjson.loads(raw)
            is_json = True
        except orjson.JSONDecodeError:
            # orjson refuses what the json module accepts (integers past 64 bits, NaN): ask it too.
            try:
                parsed = json.loads(raw)
                is_json = True
            except ValueError:
                pass
    row: dict = expand_fields(parsed, AUDIT_SET, COLLISION_PREFIX) if isinstance(parsed, dict) else {}
    row.update(
        cf_kv_key=record["key"],
        cf_kv_namespace_id=namespace_id,
        cf_kv_namespace_title=namespace_title,
        cf_kv_metadata=record["metadata"],
        cf_kv_expiration=record["expiration"],
        cf_kv_fetched_at=fetched_at,
        cf_kv_value_is_json=is_json,
        cf_kv_value_raw=raw,
        cf_kv_value_encoding=record["value_encoding"],
    )
    return row
