"""Real snapshot files in and out of the snapshot folder, and an HTTP server on loopback that must never be asked."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dlt_platform.local.loopback import JSONHandler, LoopbackServer


def write_snapshot(path: Path, keys: list[str]) -> Path:
    """A gzip NDJSON snapshot as the platform writes them, one record a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as file:
        for key in keys:
            file.write(json.dumps({"key": key, "value": json.dumps({"planted": True}), "value_encoding": "text",
                                   "metadata": None, "expiration": None,
                                   "fetched_at": "2026-11-26T00:00:00+00:00"}) + "\n")
    return path


class _RecordingHandler(JSONHandler):
    def do_GET(self) -> None:
        self.server.owner.append(("GET", self.path))
        self.send_body(200, write_snapshot_bytes())

    def do_HEAD(self) -> None:
        self.server.owner.append(("HEAD", self.path))
        self.send_body(200, b"")


def write_snapshot_bytes() -> bytes:
    return gzip.compress(json.dumps({"key": "planted", "value": "{}", "value_encoding": "text",
                                     "fetched_at": "2026-11-26T00:00:00+00:00"}).encode() + b"\n")


@pytest.fixture
def snapshot_http_server():
    """Serves a valid snapshot at every path and records each request (a fetch would load its record)."""
    requests: list[tuple[str, str]] = []
    with LoopbackServer(_RecordingHandler, requests) as server:
        server.requests = requests
        yield server
