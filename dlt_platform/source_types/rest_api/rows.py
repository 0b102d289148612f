"""Audit columns of rest_api rows, named like the KV family's `cf_kv_*`:

- `rest_api_url`: the URL of the page the row came from (query parameters that carry secrets shown as ***);
- `rest_api_fetched_at`: when that page was received (UTC).

Which page an item came from is told by the paginator: dlt hands a resource's paginator every page it received,
with that page's items, in the thread that fetched it (dlt's worker threads for child resources fetched
concurrently). PageStamps wraps the paginator dlt would use and marks each item with its page under PAGE_FIELD,
which becomes the audit columns when the item becomes a row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dlt.common.schema.typing import TColumnSchema
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS, sanitize_url

URL_COLUMN, FETCHED_AT_COLUMN = "rest_api_url", "rest_api_fetched_at"
# Where an item carries its Page from the paginator to the step that makes it a row (which removes it).
PAGE_FIELD = "_rest_api_page"
AUDIT_COLUMN_HINTS: dict[str, TColumnSchema] = {
    URL_COLUMN: {"data_type": "text", "nullable": False},
    FETCHED_AT_COLUMN: {"data_type": "timestamp", "nullable": False},
}


@dataclass
class Page:
    url: str
    fetched_at: dt.datetime


def sensitive_params(secret_params: set[str]) -> set[str]:
    """Query parameters shown as *** in URLs: dlt's list of sensitive names and the source's own."""
    return SENSITIVE_PARAMS | secret_params


class PageStamps(BasePaginator):
    """The paginator dlt would use for a resource (None: dlt's detection, on the first page, as its client does),
    marking each item of every page with that page. dlt copies it for each parent item of a child resource."""

    def __init__(self, paginator: BasePaginator | None, secret_params: set[str]) -> None:
        super().__init__()
        self.paginator, self.sensitive = paginator, sensitive_params(secret_params)

    def init_request(self, request) -> None:
        if self.paginator is not None:
            self.paginator.init_request(request)

    def update_state(self, response, data=None) -> None:
        if self.paginator is None:
            self.paginator = RESTClient(response.url).detect_paginator(response, data)
        self.paginator.update_state(response, data)
        page = Page(sanitize_url(response.url, self.sensitive), dt.datetime.now(dt.UTC))
        for item in data or ():
            if isinstance(item, dict):
                item[PAGE_FIELD] = page

    def update_request(self, request) -> None:
        assert self.paginator is not None  # update_state came first
        self.paginator.update_request(request)

    @property
    def has_next_page(self) -> bool:
        return self.paginator is None or self.paginator.has_next_page

    def __str__(self) -> str:
        return str(self.paginator)


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
