"""A loopback webhook receiver standing in for a Slack incoming webhook: the Worker's ALERT_WEBHOOK_URL in e2e."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from dlt_platform.local.loopback import JSONHandler, LoopbackServer


class AlertReceiver:
    """Keeps every JSON body POSTed to it, in order."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self)

    @property
    def url(self) -> str:
        return f"{self._server.url}/hooks/alerts"

    def record(self, body: dict) -> None:
        with self._lock:
            self.received.append(body)

    def about(self, run_id: str) -> list[dict]:
        with self._lock:
            return [alert for alert in self.received if run_id in alert.get("text", "")]

    def wait_for(self, run_id: str, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not self.about(run_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.about(run_id)

    def start(self) -> AlertReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


class _Handler(JSONHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.owner.record(orjson.loads(self.read_body()))
        self.send_body(200, {"ok": True})


@pytest.fixture(scope="session")
def alert_receiver():
    receiver = AlertReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
