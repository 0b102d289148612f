"""The Worker's `GET /internal/kv/{namespace_title}/page` over loopback, served from a KVApiState.

The Worker itself is tested in the Workers runtime; this double lets the Python worker transport be tested
with the same namespaces the REST double serves, so both transports can be held to identical records.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

from dlt_platform.local.loopback import JSONHandler, LoopbackServer
from dlt_platform.source_types.cloudflare_kv.local_api import KVApiState


class _Handler(JSONHandler):
    server: LoopbackServer
    _send = JSONHandler.send_body

    def do_GET(self) -> None:
        server: WorkerKVDouble = self.server.owner
        server.requests.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {server.token}":
            return self._send(401, {"error": {"code": "unauthorized", "message": "missing or wrong bearer token"}})
        url = urlsplit(self.path)
        parts = url.path.split("/")
        if len(parts) != 5 or parts[1:3] != ["internal", "kv"] or parts[4] != "page":
            return self._send(404, {"error": {"code": "not_found", "message": "no route"}})
        title = unquote(parts[3])
        namespace = next((ns for ns in server.state.namespaces.values() if ns.title == title), None)
        if namespace is None:
            return self._send(404, {"error": {"code": "unknown_namespace", "message": f"no KV binding {title}"}})
        query = parse_qs(url.query)
        limit = int(query.get("limit", ["1000"])[0])
        prefix = query.get("prefix", [""])[0]
        after = query.get("cursor", [""])[0]
        keys, _ = namespace.keys()
        selected = [k for k in keys if k.startswith(prefix) and (not after or k.encode() > after.encode())]
        page, rest = selected[:limit], selected[limit:]
        records = []
        for key in page:
            raw, metadata, expiration = namespace.entries[key]
            try:
                value, encoding = raw.decode("utf-8"), "text"
            except UnicodeDecodeError:
                value, encoding = base64.b64encode(raw).decode(), "base64"
            records.append({"key": key, "value": value, "value_encoding": encoding, "metadata": metadata,
                            "expiration": expiration})
        self._send(200, {"records": records, "cursor": page[-1] if rest else None, "list_complete": not rest})


class WorkerKVDouble:
    def __init__(self, state: KVApiState, token: str) -> None:
        self.state, self.token = state, token
        self.requests: list[str] = []
        self._server = LoopbackServer(_Handler, self)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> WorkerKVDouble:
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
