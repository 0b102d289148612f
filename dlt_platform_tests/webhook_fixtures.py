"""A loopback stand-in of the Worker's webhook internal API (docs/architecture.md, "Webhook feeds"), for loader
and code-location tests before they meet the real Worker (the e2e tests run the real one under wrangler dev).

Real HTTP on 127.0.0.1 with the contract's shapes: `GET /internal/webhooks/waiting`,
`GET /internal/webhooks/:id/deliveries?state=waiting|hour=...&after=&limit=`, `POST .../deliveries/loaded`,
bearer DLT_INTERNAL_TOKEN. Deliveries are accepted the way the Worker accepts them: a duplicate id is ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import pytest

from dlt_platform.local.loopback import JSONHandler, LoopbackServer

MAX_PAGE = 1000


@dataclass
class Delivery:
    document: dict
    state: str = "waiting"
    run_id: str | None = None

    @property
    def order(self) -> tuple[str, str]:
        return self.document["received_at"], self.document["delivery_id"]


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class WebhookStore:
    token: str
    enabled: set[str] = field(default_factory=set)
    deliveries: dict[str, dict[str, Delivery]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_reads_after: int | None = None  # answer 503 to delivery reads after this many pages (a Worker outage)
    pages_served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, source_id: str, body: dict | str, *, delivery_id: str | None = None,
               received_at: dt.datetime | None = None, event_type: str | None = "push") -> str:
        delivery_id = delivery_id or str(uuid.uuid4())
        text = body if isinstance(body, str) else orjson.dumps(body).decode()
        document = {"source_id": source_id, "delivery_id": delivery_id,
                    "received_at": iso(received_at or dt.datetime.now(dt.timezone.utc)), "event_type": event_type,
                    "signature_preset": "github", "headers": {"content-type": "application/json"}, "body": text}
        with self.lock:
            self.deliveries.setdefault(source_id, {}).setdefault(delivery_id, Delivery(document))
        return delivery_id

    def waiting_ids(self, source_id: str) -> set[str]:
        return {i for i, d in self.deliveries.get(source_id, {}).items() if d.state == "waiting"}

    def loaded_ids(self, source_id: str) -> set[str]:
        return {i for i, d in self.deliveries.get(source_id, {}).items() if d.state == "loaded"}

    # --- the API ---

    def waiting(self) -> dict:
        sources = []
        for source_id in sorted(self.enabled | set(self.deliveries)):
            waiting = [d for d in self.deliveries.get(source_id, {}).values() if d.state == "waiting"]
            oldest = min((d.document["received_at"] for d in waiting), default=None)
            sources.append({"source_id": source_id, "waiting": len(waiting), "oldest_received_at": oldest})
        return {"sources": sources}

    def page(self, source_id: str, query: dict[str, str]) -> tuple[int, dict]:
        if self.fail_reads_after is not None and self.pages_served >= self.fail_reads_after:
            return 503, {"error": {"code": "unavailable", "message": "R2 unavailable"}}
        self.pages_served += 1
        deliveries = sorted(self.deliveries.get(source_id, {}).values(), key=lambda d: d.order)
        if "hour" in query:
            deliveries = [d for d in deliveries if d.document["received_at"][:13] == query["hour"]]
        elif query.get("state") == "waiting":
            deliveries = [d for d in deliveries if d.state == "waiting"]
        else:
            return 400, {"error": {"code": "bad_request", "message": "state=waiting or hour=YYYY-MM-DDTHH"}}
        if "after" in query:
            after = tuple(orjson.loads(base64.urlsafe_b64decode(query["after"])))
            deliveries = [d for d in deliveries if d.order > after]
        limit = min(int(query.get("limit", 500)), MAX_PAGE)
        chosen = deliveries[:limit]
        more = len(deliveries) > limit
        cursor = base64.urlsafe_b64encode(orjson.dumps(list(chosen[-1].order))).decode() if more else None
        return 200, {"deliveries": [d.document for d in chosen], "next": cursor}

    def mark(self, source_id: str, body: dict) -> tuple[int, dict]:
        ids = body.get("delivery_ids")
        if not isinstance(ids, list) or len(ids) > MAX_PAGE or not isinstance(body.get("run_id"), str):
            return 400, {"error": {"code": "bad_request", "message": "run_id and at most 1000 delivery_ids"}}
        marked = 0
        for delivery_id in ids:
            delivery = self.deliveries.get(source_id, {}).get(delivery_id)
            if delivery is not None and delivery.state == "waiting":
                delivery.state, delivery.run_id = "loaded", body["run_id"]
                marked += 1
        return 200, {"marked": marked}


class _Handler(JSONHandler):
    server: WebhookApiServer

    def _answer(self, method: str) -> None:
        store: WebhookStore = self.server.owner
        raw = self.read_body()
        if self.headers.get("Authorization") != f"Bearer {store.token}":
            return self.send_body(401, {"error": {"code": "unauthorized", "message": "bad token"}})
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        parts = [unquote(part) for part in url.path.strip("/").split("/")]
        with store.lock:
            store.requests.append((method, self.path))
            if method == "GET" and parts == ["internal", "webhooks", "waiting"]:
                return self.send_body(200, store.waiting())
            if len(parts) >= 4 and parts[:2] == ["internal", "webhooks"] and parts[3] == "deliveries":
                if method == "GET" and len(parts) == 4:
                    return self.send_body(*store.page(parts[2], query))
                if method == "POST" and parts[4:] == ["loaded"]:
                    return self.send_body(*store.mark(parts[2], orjson.loads(raw or b"{}")))
        self.send_body(404, {"error": {"code": "not_found", "message": url.path}})

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")


class WebhookApiServer(LoopbackServer):
    def __init__(self, store: WebhookStore) -> None:
        super().__init__(_Handler, store)

    @property
    def store(self) -> WebhookStore:
        return self.owner


@pytest.fixture
def webhook_api():
    with WebhookApiServer(WebhookStore(token="internal-test-token")) as server:
        yield server
