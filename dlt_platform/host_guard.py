"""A reverse proxy in front of the Dagster webserver that refuses requests for foreign Host names.

The Dagster webserver answers whatever Host a request names, so a web page whose host name resolves to
127.0.0.1 (DNS rebinding) could drive a local Dagster from a browser. `dlt-platform serve` binds the webserver
to loopback on an internal port and puts this guard on the public port. Accepted: the loopback names,
`container` (the host of the Worker's GraphQL calls through its container binding, worker/src/dagster.ts), the
host of DLT_ORCHESTRATOR_URL (the Worker's own name, which its /dagster/* proxy passes on from the browser), and
any names in DAGSTER_ALLOWED_HOSTS (comma-separated). HTTP and the UI's websocket pass through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from urllib.parse import urlsplit

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from dlt_platform.settings import Settings

DEFAULT_ALLOWED_HOSTS = ("127.0.0.1", "localhost", "container")
# Hop-by-hop headers belong to one connection and are not forwarded (RFC 9110, section 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


def allowed_hosts(settings: Settings | None = None) -> list[str]:
    settings = settings or Settings.from_env()
    worker = urlsplit(settings.orchestrator_url or "").hostname
    return [*DEFAULT_ALLOWED_HOSTS, *([worker] if worker else []), *settings.dagster_allowed_hosts]


def create_app(upstream: str, hosts: list[str] | None = None) -> Starlette:
    """`upstream` is the webserver's base URL, e.g. http://127.0.0.1:3001."""
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(300, connect=10))

    async def forward(request: Request) -> StreamingResponse | PlainTextResponse:
        headers = [(name, value) for name, value in request.headers.raw if name.decode().lower() not in HOP_BY_HOP]
        outgoing = client.build_request(
            request.method, request.url.path, params=request.url.query, headers=headers, content=request.stream()
        )
        try:
            response = await client.send(outgoing, stream=True)
        except httpx.TransportError:
            return PlainTextResponse("the Dagster webserver is not answering (starting or restarting)", 502)
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            background=BackgroundTask(response.aclose),
            headers={name: value for name, value in response.headers.multi_items() if name.lower() not in HOP_BY_HOP},
        )

    async def forward_websocket(browser: WebSocket) -> None:
        query = f"?{browser.url.query}" if browser.url.query else ""
        target = upstream.replace("http", "ws", 1) + browser.url.path + query
        try:
            server = await websockets.connect(target, subprotocols=browser.scope.get("subprotocols") or None)
        except (OSError, websockets.exceptions.WebSocketException):
            await browser.close(code=1011)  # before accept: the browser gets an HTTP error, not a socket
            return
        async with server:
            await browser.accept(subprotocol=server.subprotocol)

            async def to_server() -> None:
                with contextlib.suppress(WebSocketDisconnect):
                    while (message := await browser.receive())["type"] != "websocket.disconnect":
                        await server.send(message["text"] if message.get("text") is not None else message["bytes"])

            async def to_browser() -> None:
                with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                    async for message in server:
                        await (browser.send_text(message) if isinstance(message, str) else browser.send_bytes(message))

            tasks = [asyncio.create_task(to_server()), asyncio.create_task(to_browser())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        if browser.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await browser.close()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await client.aclose()

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(
        routes=[WebSocketRoute("/{path:path}", forward_websocket), Route("/{path:path}", forward, methods=methods)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts or allowed_hosts())],
        lifespan=lifespan,
    )


def main() -> None:
    """python -m dlt_platform.host_guard HOST PORT UPSTREAM_URL"""
    host, port, upstream = sys.argv[1:4]
    uvicorn.run(create_app(upstream), host=host, port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
