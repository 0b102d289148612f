"""Audit columns of rest_api rows, named like the KV family's `cf_kv_*`:

- `rest_api_url`: the URL of the page the row came from (query parameters that carry secrets shown as ***);
- `rest_api_fetched_at`: when that page was received (UTC).

The page a row came from is known from a response hook per resource (dlt yields a page's items before it asks
for the next page), so each resource keeps its own "current page".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dlt.common.schema.typing import TColumnSchema
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS, sanitize_url

URL_COLUMN, FETCHED_AT_COLUMN = "rest_api_url", "rest_api_fetched_at"
AUDIT_COLUMN_HINTS: dict[str, TColumnSchema] = {
    URL_COLUMN: {"data_type": "text", "nullable": False},
    FETCHED_AT_COLUMN: {"data_type": "timestamp", "nullable": False},
}


@dataclass
class Page:
    url: str
    fetched_at: dt.datetime


class CurrentPage:
    """The last page a resource received; set by its response hook, read when its items become rows."""

    def __init__(self, secret_params: set[str]) -> None:
        self.sensitive = SENSITIVE_PARAMS | secret_params
        self.page: Page | None = None

    def hook(self, response, *args, **kwargs) -> None:
        if response.ok:
            self.page = Page(sanitize_url(response.url, self.sensitive), dt.datetime.now(dt.UTC))


def with_audit_columns(item: dict, url: str, fetched_at: dt.datetime | str) -> dict:
    """The row of an item: its fields, an item field named like an audit column kept as `value_<name>`."""
    row = dict(item)
    for column in AUDIT_COLUMN_HINTS:
        if column in row:
            name = f"value_{column}"
            while name in row:
                name = f"value_{name}"
            row[name] = row.pop(column)
    row[URL_COLUMN] = url
    row[FETCHED_AT_COLUMN] = (
        fetched_at if isinstance(fetched_at, dt.datetime) else dt.datetime.fromisoformat(fetched_at)
    )
    return row
