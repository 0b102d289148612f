"""Delivery document -> warehouse row.

Every row carries the webhook_* audit columns (named like the KV family's cf_kv_*). A JSON-object body is
expanded into columns (nested objects as `parent__child`, lists as child tables, as for KV); a body field that
would take an audit column's name is kept as `body_<name>`. A body that is not a JSON object (an array, a
scalar, form data, text) is kept whole in webhook_body_raw.
"""

from __future__ import annotations

import datetime as dt
import json

import orjson

from dlt_platform.sources.columns import expand_fields

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
AUDIT_COLUMN_HINTS = {
    "webhook_delivery_id": {"data_type": "text", "nullable": False},
    "webhook_received_at": {"data_type": "timestamp", "nullable": False, "dedup_sort": "desc"},
    "webhook_event_type": {"data_type": "text"},
    "webhook_signature_preset": {"data_type": "text"},
    "webhook_source_id": {"data_type": "text"},
    "webhook_body_raw": {"data_type": "text"},
}


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


def warehouse_row(document: dict) -> dict:
    body = document.get("body")
    body = body if isinstance(body, str) else ""
    parsed = parse_body(body)
    row: dict = expand_fields(parsed, AUDIT_SET, COLLISION_PREFIX) if isinstance(parsed, dict) else {}
    row.update(
        webhook_delivery_id=document["delivery_id"],
        webhook_received_at=parse_received_at(document["received_at"]),
        webhook_event_type=document.get("event_type"),
        webhook_signature_preset=document.get("signature_preset"),
        webhook_source_id=document["source_id"],
        webhook_body_raw=None if isinstance(parsed, dict) else body,
    )
    return row
