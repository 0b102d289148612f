"""Two ways to read a KV namespace, one record shape.

A record is {"key", "value", "value_encoding", "metadata", "expiration"}: `value` is the text of the value,
or its base64 when the bytes are not UTF-8 (`value_encoding` says which). Both transports yield pages of
records in listing order, so memory is bounded by one page whatever the namespace's size.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NotRequired, Protocol, TypedDict, TypeVar
from urllib.parse import quote

import orjson
from dlt.common.utils import chunks

from dlt_platform.http import RetryPolicy, http_client, send_with_retries
from dlt_platform.source_types.cloudflare_kv.rest_client import BULK_GET_SIZE, CloudflareAPIError, CloudflareKVClient


class KVRecord(TypedDict):
    key: str
    value: str
    value_encoding: str  # "text" | "base64"
    metadata: object | None
    expiration: int | None
    fetched_at: NotRequired[str]  # stamped when its page is read (source.read_pages)


def encode_value(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


class KVTransport(Protocol):
    def pages(self, prefix: str | None) -> Iterator[list[KVRecord]]:
        """Every key under `prefix` with its value, a listing page at a time."""

    def records_for_keys(self, keys: list[str]) -> Iterator[list[KVRecord]]:
        """The given keys (missing ones skipped), in the given order."""

    def close(self) -> None: ...


class RestTransport:
    """Listing pages of 1,000 keys, their values by bulk get in 10 requests sent concurrently: against the real
    API each request takes tens of milliseconds, so a page's reads overlap instead of adding up."""

    def __init__(self, client: CloudflareKVClient, namespace_id: str, concurrency: int = 4) -> None:
        self.client, self.namespace_id = client, namespace_id
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="kv-bulk-get")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def pages(self, prefix: str | None) -> Iterator[list[KVRecord]]:
        cursor = None
        while True:
            listed, cursor = self.client.list_keys(self.namespace_id, prefix=prefix, cursor=cursor)
            if listed:
                yield self._read(listed)
            if cursor is None:
                return

    def records_for_keys(self, keys: list[str]) -> Iterator[list[KVRecord]]:
        for chunk in chunks(keys, 1000):
            yield self._read([{"name": key} for key in chunk])

    def _read(self, listed: list[dict]) -> list[KVRecord]:
        batches = list(chunks(listed, BULK_GET_SIZE))
        results = self._pool.map(
            lambda chunk: self.client.bulk_get(self.namespace_id, [e["name"] for e in chunk]), batches
        )
        records: list[KVRecord] = []
        for chunk, values in zip(batches, results, strict=True):
            for entry in chunk:
                record = self._record(entry, None if values is None else values.get(entry["name"]), values is None)
                if record is not None:
                    records.append(record)
        return records

    def _record(self, entry: dict, found: dict | None, batch_refused: bool) -> KVRecord | None:
        key = entry["name"]
        metadata = entry.get("metadata")
        expiration = entry.get("expiration")
        if found is not None and "\ufffd" not in str(found.get("value", "")):
            value = found.get("value")
            text = value if isinstance(value, str) else _json_text(value)
            metadata = found.get("metadata", metadata)
            expiration = found.get("expiration", expiration)
            return KVRecord(
                key=key, value=text, value_encoding="text", metadata=metadata, expiration=_int_or_none(expiration)
            )
        if found is None and not batch_refused:
            # Bulk get answers null for a key deleted since it was listed.
            return None
        # Bulk get cannot carry this value (binary, or mangled into U+FFFD): read its bytes alone.
        raw = self.client.get_value(self.namespace_id, key)
        if raw is None:
            return None
        if "metadata" not in entry:
            metadata = self.client.get_metadata(self.namespace_id, key)
        text, encoding = encode_value(raw)
        return KVRecord(
            key=key, value=text, value_encoding=encoding, metadata=metadata, expiration=_int_or_none(expiration)
        )


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _int_or_none(value: int | str | None) -> int | None:
    return None if value in (None, "") else int(value)


class WorkerTransport:
    """The orchestrator Worker's `GET /internal/kv/{namespace_title}/page`, read through its KV binding."""

    def __init__(
        self,
        orchestrator_url: str | None,
        internal_token: str | None,
        namespace_title: str,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 60.0,
    ) -> None:
        if not orchestrator_url:
            raise CloudflareAPIError(0, "DLT_ORCHESTRATOR_URL is not set (needed by the worker transport)")
        if not internal_token:
            raise CloudflareAPIError(0, "DLT_INTERNAL_TOKEN is not set (needed by the worker transport)")
        self.namespace_title, self.policy = namespace_title, policy
        self._http = http_client(
            base_url=orchestrator_url, timeout=timeout, headers={"Authorization": f"Bearer {internal_token}"}
        )

    def close(self) -> None:
        self._http.close()

    def _page(self, prefix: str | None, cursor: str | None) -> dict:
        params: dict[str, int | str] = {"limit": 1000}
        if prefix:
            params["prefix"] = prefix
        if cursor:
            params["cursor"] = cursor
        request = self._http.build_request(
            "GET", f"/internal/kv/{quote(self.namespace_title, safe='')}/page", params=params
        )
        response = send_with_retries(self._http, request, self.policy)
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.reason_phrase
            raise CloudflareAPIError(response.status_code, f"orchestrator: {message}")
        return orjson.loads(response.content)

    def pages(self, prefix: str | None) -> Iterator[list[KVRecord]]:
        cursor = None
        while True:
            page = self._page(prefix, cursor)
            if page["records"]:
                records: list[KVRecord] = page["records"]  # the Worker's page holds KV records as such
                yield records
            cursor = page.get("cursor")
            if page.get("list_complete", True) or not cursor:
                return

    def records_for_keys(self, keys: list[str]) -> Iterator[list[KVRecord]]:
        # The Worker API serves listings only: walk them and keep the wanted keys, in the wanted order per page.
        wanted = set(keys)
        for page in self.pages(_common_prefix(keys)):
            found = [record for record in page if record["key"] in wanted]
            wanted.difference_update(record["key"] for record in found)
            if found:
                yield found
            if not wanted:
                return


def _common_prefix(keys: Iterable[str]) -> str | None:
    keys = list(keys)
    if not keys:
        return None
    first, last = min(keys), max(keys)
    length = 0
    while length < min(len(first), len(last)) and first[length] == last[length]:
        length += 1
    return first[:length] or None


_DONE = object()


Page = TypeVar("Page")  # a listing's records, or a snapshot's being replayed


def prefetched(pages: Iterator[Page], depth: int = 2) -> Iterator[Page]:
    """Read up to `depth` pages ahead in a thread, so fetching overlaps with shaping and writing rows.

    Memory stays bounded by `depth` pages; an error in the reader is raised to the consumer; a consumer that
    stops early (a --limit) stops the reader.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        buffer.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as error:  # handed to the consumer
            buffer.put(error)

    thread = threading.Thread(target=reader, name="kv-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
