"""The guard in front of the Dagster webserver: foreign Host headers refused, everything else passed through."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from websockets.sync.client import connect
from websockets.sync.server import serve as websocket_serve

from dlt_platform.host_guard import allowed_hosts, create_app
from dlt_platform.local.loopback import JSONHandler, LoopbackServer, free_port


class Upstream(JSONHandler):
    def do_POST(self) -> None:
        self.send_body(201, {"path": self.path, "host": self.headers["Host"], "body": self.read_body().decode()},
                       headers={"X-Upstream": "yes"})



@pytest.fixture(scope="module")
def guard():
    def echo(connection) -> None:
        for message in connection:
            connection.send(f"echo:{message}")

    ws_upstream = websocket_serve(echo, "127.0.0.1", 0, subprotocols=["graphql-ws"])
    ws_port = ws_upstream.socket.getsockname()[1]
    threading.Thread(target=ws_upstream.serve_forever, daemon=True).start()
    with LoopbackServer(Upstream, None) as http_upstream:
        port = free_port()
        # One upstream URL for both: HTTP to the loopback server, websockets to the echo server.
        app = create_app(http_upstream.url)
        ws_app = create_app(f"http://127.0.0.1:{ws_port}")
        servers = [uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")),
                   uvicorn.Server(uvicorn.Config(ws_app, host="127.0.0.1", port=(ws_guard := free_port()),
                                                 log_level="warning"))]
        for server in servers:
            threading.Thread(target=server.run, daemon=True).start()
        deadline = time.monotonic() + 20
        while not all(server.started for server in servers) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield {"http": f"http://127.0.0.1:{port}", "ws": f"ws://127.0.0.1:{ws_guard}"}
        for server in servers:
            server.should_exit = True
    ws_upstream.shutdown()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3000", "127.0.0.1.evil.example", "attacker"])
def test_a_foreign_host_header_is_refused(guard, host):
    response = httpx.post(f"{guard['http']}/dagster/graphql", headers={"Host": host}, content=b"{}")
    assert response.status_code == 400 and "X-Upstream" not in response.headers


@pytest.mark.parametrize("host", [None, "localhost:3000", "container"])
def test_loopback_names_and_the_container_binding_pass_through(guard, host):
    headers = {"Host": host} if host else {}
    response = httpx.post(f"{guard['http']}/dagster/graphql?x=1", headers=headers, content=b'{"query": "{}"}')
    assert response.status_code == 201 and response.headers["X-Upstream"] == "yes"
    assert response.json()["path"] == "/dagster/graphql?x=1" and response.json()["body"] == '{"query": "{}"}'


def test_websockets_pass_through_with_their_subprotocol(guard):
    with connect(f"{guard['ws']}/dagster/graphql", subprotocols=["graphql-ws"]) as connection:
        assert connection.subprotocol == "graphql-ws"
        connection.send(json.dumps({"type": "connection_init"}))
        assert connection.recv(timeout=10) == 'echo:{"type": "connection_init"}'
    assert websocket_handshake_status(guard["ws"], "evil.example") == 400
    assert websocket_handshake_status(guard["ws"], "127.0.0.1") == 101
    # The upstream refuses a handshake without its subprotocol: the guard refuses it too, without crashing.
    assert websocket_handshake_status(guard["ws"], "127.0.0.1", subprotocol=None) == 403


def websocket_handshake_status(url: str, host: str, subprotocol: str | None = "graphql-ws") -> int:
    """The status of a raw upgrade request with exactly one Host header (the websockets client adds its own)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall((f"GET /dagster/graphql HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n"
                            + (f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else "") + "\r\n").encode())
        return int(connection.recv(1024).split(b" ", 2)[1])


def test_the_workers_own_name_and_configured_names_are_allowed(monkeypatch):
    monkeypatch.setenv("DLT_ORCHESTRATOR_URL", "https://dlt-orchestrator.example.workers.dev/")
    monkeypatch.setenv("DAGSTER_ALLOWED_HOSTS", "dagster.internal, ops.example.com")
    assert allowed_hosts() == ["127.0.0.1", "localhost", "container", "dlt-orchestrator.example.workers.dev",
                               "dagster.internal", "ops.example.com"]
    monkeypatch.delenv("DLT_ORCHESTRATOR_URL")
    monkeypatch.delenv("DAGSTER_ALLOWED_HOSTS")
    assert allowed_hosts() == ["127.0.0.1", "localhost", "container"]
