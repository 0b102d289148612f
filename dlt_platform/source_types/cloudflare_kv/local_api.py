"""A loopback stand-in for Cloudflare's KV REST API (client/v4), for the tests and the load benchmark.

It follows the documented shapes and limits: the {success, errors, messages, result, result_info} envelope;
bearer-token auth (403, code 10000); namespaces paged with page/per_page; keys listed in byte order, 10..1,000
a page, with an opaque cursor that is "" on the last page; bulk get of at most 100 keys, text values only
(a batch holding a non-UTF-8 value is refused with 400, so clients must read those keys one by one); single
reads of raw bytes with URL-encoded key names; 404 code 10009 for a missing key. `fail_next()` injects 429
(with Retry-After) or 5xx answers to exercise retries.
"""

from __future__ import annotations

import base64
import bisect
import json
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from dlt_platform.local.loopback import JSONHandler, LoopbackServer

AUTH_ERROR_CODE, AUTH_ERROR_MESSAGE = 10000, "Authentication error"


@dataclass
class Namespace:
    title: str
    entries: dict[str, tuple[bytes, object, int | None]] = field(default_factory=dict)
    # The keys in listing order and their bytes, computed when first listed after a change.
    listing_order: tuple[list[str], list[bytes]] | None = None

    def put(self, key: str, value: bytes | str, metadata: object = None, expiration: int | None = None) -> None:
        self.entries[key] = (value.encode() if isinstance(value, str) else value, metadata, expiration)
        self.listing_order = None

    def delete(self, key: str) -> None:
        self.entries.pop(key, None)
        self.listing_order = None

    def keys(self) -> tuple[list[str], list[bytes]]:
        """Keys in KV's listing order (UTF-8 bytes), and their bytes for bisecting."""
        if self.listing_order is None:
            sorted_keys = sorted(self.entries, key=lambda k: k.encode("utf-8"))
            self.listing_order = sorted_keys, [key.encode("utf-8") for key in sorted_keys]
        return self.listing_order


@dataclass
class Fault:
    status: int
    retry_after: int | None = None
    path_contains: str = ""


class KVApiState:
    def __init__(self, account_id: str, token: str) -> None:
        self.account_id, self.token = account_id, token
        self.namespaces: dict[str, Namespace] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, raw path with query)
        self.lock = threading.Lock()

    def add_namespace(self, namespace_id: str, title: str) -> Namespace:
        self.namespaces[namespace_id] = Namespace(title)
        return self.namespaces[namespace_id]

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None, path_contains: str = "") -> None:
        with self.lock:
            self.faults.extend(Fault(status, retry_after, path_contains) for _ in range(times))

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.path_contains in path:
                    return self.faults.pop(index)
        return None


def _envelope(result, result_info=None, success=True, errors=None) -> dict:
    body = {"success": success, "errors": errors or [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


class _Handler(JSONHandler):
    server: LoopbackServer[KVApiState]
    _send = JSONHandler.send_body

    def _error(self, status: int, code: int, message: str, headers: dict | None = None) -> None:
        self._send(status, _envelope(None, success=False, errors=[{"code": code, "message": message}]), headers)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        state = self.server.owner
        body = self.read_body()
        state.requests.append((method, self.path))
        fault = state.take_fault(self.path)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            code = 10429 if fault.status == 429 else 10500
            return self._error(
                fault.status, code, "Too many requests" if fault.status == 429 else "Internal error", headers
            )
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            return self._error(403, AUTH_ERROR_CODE, AUTH_ERROR_MESSAGE)
        url = urlsplit(self.path)
        # Split the raw path before decoding so an encoded "/" inside a key name stays part of the name.
        parts = url.path.split("/")
        query = parse_qs(url.query)
        prefix = ["", "client", "v4", "accounts"]
        if parts[: len(prefix)] == prefix:
            parts = parts[len(prefix) :]
        elif parts[:2] == ["", "accounts"]:
            parts = parts[2:]
        if len(parts) < 4 or unquote(parts[0]) != state.account_id or parts[1:3] != ["storage", "kv"]:
            return self._error(404, 7003, "Could not route to the requested resource")
        rest = parts[3:]
        if rest == ["namespaces"] and method == "GET":
            return self._namespaces(query)
        if len(rest) < 3 or rest[0] != "namespaces":
            return self._error(404, 7003, "Could not route to the requested resource")
        namespace = state.namespaces.get(unquote(rest[1]))
        if namespace is None:
            return self._error(404, 10013, "list keys: 'namespace not found'")
        action = rest[2:]
        if action == ["keys"] and method == "GET":
            return self._list_keys(namespace, query)
        if action == ["bulk", "get"] and method == "POST":
            return self._bulk_get(namespace, body)
        if len(action) == 2 and action[0] in ("values", "metadata") and method == "GET":
            entry = namespace.entries.get(unquote(action[1]))
            if entry is None:
                return self._error(404, 10009, "get: 'key not found'")
            if action[0] == "values":
                headers = {"Expiration": str(entry[2])} if entry[2] is not None else {}
                return self._send(200, entry[0], headers)
            return self._send(200, _envelope(entry[1]))
        return self._error(405, 10405, "Method not allowed")

    def _namespaces(self, query: dict) -> None:
        page = int(query.get("page", ["1"])[0])
        per_page = min(int(query.get("per_page", ["20"])[0]), 1000)
        items = [
            {"id": ns_id, "title": ns.title, "supports_url_encoding": True}
            for ns_id, ns in self.server.owner.namespaces.items()
        ]
        chunk = items[(page - 1) * per_page : page * per_page]
        self._send(
            200, _envelope(chunk, {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items)})
        )

    def _list_keys(self, namespace: Namespace, query: dict) -> None:
        limit = int(query.get("limit", ["1000"])[0])
        if not 10 <= limit <= 1000:
            return self._error(400, 10026, "list keys: 'limit must be between 10 and 1000'")
        key_prefix = query.get("prefix", [""])[0]
        cursor = query.get("cursor", [""])[0]
        after = base64.urlsafe_b64decode(cursor.encode()).decode() if cursor else None
        keys, encoded = namespace.keys()
        start = 0 if after is None else bisect.bisect_right(encoded, after.encode())
        if key_prefix:
            start = max(start, bisect.bisect_left(encoded, key_prefix.encode()))
        page: list[str] = []
        index = start
        while index < len(keys) and len(page) < limit:
            key = keys[index]
            if key_prefix and not key.startswith(key_prefix):
                break
            page.append(key)
            index += 1
        more = index < len(keys) and (not key_prefix or keys[index].startswith(key_prefix))
        next_cursor = base64.urlsafe_b64encode(page[-1].encode()).decode() if more and page else ""
        result = []
        for key in page:
            _value, metadata, expiration = namespace.entries[key]
            item: dict = {"name": key}
            if expiration is not None:
                item["expiration"] = expiration
            if metadata is not None:
                item["metadata"] = metadata
            result.append(item)
        self._send(200, _envelope(result, {"count": len(result), "cursor": next_cursor}))

    def _bulk_get(self, namespace: Namespace, body: bytes) -> None:
        try:
            request = json.loads(body)
            keys = request["keys"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, 10001, "bulk get: 'request body must be {\"keys\": [...]}'")
        if not isinstance(keys, list) or not 1 <= len(keys) <= 100:
            return self._error(400, 10155, "bulk get: 'between 1 and 100 keys must be requested'")
        with_metadata = bool(request.get("withMetadata"))
        as_json = request.get("type") == "json"
        values: dict = {}
        for key in keys:
            entry = namespace.entries.get(key)
            if entry is None:
                values[key] = None
                continue
            raw, metadata, expiration = entry
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return self._error(400, 10163, f"bulk get: 'value of key {key!r} is not text'")
            value = json.loads(text) if as_json else text
            if with_metadata:
                item = {"value": value, "metadata": metadata}
                if expiration is not None:
                    item["expiration"] = expiration
                values[key] = item
            else:
                values[key] = value
        self._send(200, _envelope({"values": values}))


class KVApiServer:
    """Serve `state` on 127.0.0.1 in a background thread; `base_url` is what CLOUDFLARE_API_BASE_URL takes."""

    def __init__(self, state: KVApiState, port: int = 0) -> None:
        self.state = state
        self._server = LoopbackServer(_Handler, state, port)

    @property
    def base_url(self) -> str:
        return f"{self._server.url}/client/v4"

    def __enter__(self) -> KVApiServer:
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
