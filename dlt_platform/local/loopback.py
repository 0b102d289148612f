"""Small HTTP servers on 127.0.0.1 for the local stand-ins and test doubles (KV REST API, Worker APIs)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, Self, TypeVar

import orjson


class JSONHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; avoid 40 ms delayed-ACK stalls

    def log_message(self, *args) -> None:  # quiet: doubles record requests themselves
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_body(self, status: int, body: dict | list | bytes, headers: dict | None = None) -> None:
        """A JSON document (dict or list) or raw bytes (application/octet-stream)."""
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


OwnerT = TypeVar("OwnerT")


class LoopbackServer(ThreadingHTTPServer, Generic[OwnerT]):
    """Serves `handler` on 127.0.0.1 from a background thread; `owner` is what handlers read as server.owner.

    Usable as a context manager, or with start()/stop(); a stopped server can be started again on the same port
    (allow_reuse_address) to simulate an outage.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: OwnerT, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.owner = owner
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    """A port nothing listens on now (the OS picks it), for a loopback server started next."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
