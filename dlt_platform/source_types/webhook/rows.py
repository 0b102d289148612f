"""Delivery document -> warehouse row.

Every row carries the webhook_* audit columns (named like the KV family's cf_kv_*), and the source's table one
row per delivery with its raw body as received (webhook_body_raw), whatever the body is. A JSON-object body is
expanded into columns (nested objects as `parent__child`, lists as child tables, as for KV, down to the source's
max_table_nesting); a body field that would take an audit column's name is kept as `body_<name>`. A source with
table_per_event_type expands each body into `<table>__<event_type>` instead, and its table keeps only the audit
columns and raw bodies (a delivery without an event type is expanded there, as in the one-table shape).
"""

from __future__ import annotations

import datetime as dt
import json

import orjson
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.typing import TColumnSchema

from dlt_platform.source_types.columns import expand_fields

AUDIT_COLUMNS = (
    "webhook_delivery_id",
    "webhook_received_at",
    "webhook_event_type",
    "webhook_signature_preset",
    "webhook_source_id",
    "webhook_body_raw",
)
AUDIT_SET = frozenset(AUDIT_COLUMNS)
COLLISION_PREFIX = "body_"

# The delivery id is the merge key; received_at orders redeliveries of one id (the latest row wins).
AUDIT_COLUMN_HINTS: dict[str, TColumnSchema] = {
    "webhook_delivery_id": {"data_type": "text", "nullable": False},
    "webhook_received_at": {"data_type": "timestamp", "nullable": False, "dedup_sort": "desc"},
    "webhook_event_type": {"data_type": "text"},
    "webhook_signature_preset": {"data_type": "text"},
    "webhook_source_id": {"data_type": "text"},
}
_naming = NamingConvention()


def parse_received_at(text: str) -> dt.datetime:
    # The Worker writes JavaScript's toISOString(): "2026-11-29T10:15:02.123Z".
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_body(body: str) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses what the json module accepts (integers past 64 bits, NaN): ask it too.
        try:
            return json.loads(body)
        except ValueError:
            return None


def audit_columns(document: dict) -> dict:
    return {
        "webhook_delivery_id": document["delivery_id"],
        "webhook_received_at": parse_received_at(document["received_at"]),
        "webhook_event_type": document.get("event_type"),
        "webhook_signature_preset": document.get("signature_preset"),
        "webhook_source_id": document["source_id"],
    }


def event_table_name(table: str, event_type: str) -> str:
    """`<table>__<event_type>`, the event type made a table name as dlt would (Stripe's `invoice.paid` ->
    `invoice_paid`)."""
    return f"{table}__{_naming.normalize_table_identifier(event_type)}"


def warehouse_rows(document: dict, table: str, per_event_type: bool = False) -> list[tuple[str, dict]]:
    """(table, row) pairs of one delivery: its row in `table` (audit columns and raw body, plus the expanded body
    unless it goes to an event type's table), and with per_event_type its expanded body in that table."""
    body = document.get("body")
    body = body if isinstance(body, str) else ""
    parsed = parse_body(body)
    audit = audit_columns(document)
    index_row = {**audit, "webhook_body_raw": body}
    if not isinstance(parsed, dict):
        return [(table, index_row)]
    expanded = expand_fields(parsed, AUDIT_SET, COLLISION_PREFIX)
    event_type = audit["webhook_event_type"]
    if per_event_type and event_type:
        return [(table, index_row), (event_table_name(table, event_type), {**expanded, **audit})]
    return [(table, {**expanded, **index_row})]
