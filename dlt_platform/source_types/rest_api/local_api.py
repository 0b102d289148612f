"""A loopback HTTP API with the habits of real SaaS APIs, for the rest_api tests, the benchmark and `make up`.

Four collections, each paginated the way a well-known API does it:
- `GET /issues` (GitHub-like): `per_page`/`page`, an RFC 8288 `Link: <...>; rel="next"` header, `since` returns
  issues updated at or after a time; bearer auth. `GET /issues/{number}/comments`: the comments of one issue,
  header-link paginated too, `since` as for issues.
- `GET /charges` (Stripe-like): `limit`/`starting_after` cursor, `{"data", "has_more", "next_cursor"}` where
  the last page still carries a cursor (only `has_more` says it is the last); `updated_since` for incremental
  loads; API key in `X-Api-Key`.
- `GET /customers`: `offset`/`limit`, `{"items", "total"}`; API key.
- `GET /events`: `page` numbers from 1, `{"results", "total_pages"}`; API key.

Wrong or missing credentials get 401 with a JSON message. `fail_next()` injects answers (429 with a Retry-After,
500) before the real one; `answer_delay` makes every answer take that long, like a remote API. Every request is
logged (method, path, query, when it arrived and when it was answered) for tests to assert on.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from dlt_platform.local.loopback import JSONHandler, LoopbackServer

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    path_prefix: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    at: float
    status: int = 0
    answered_at: float = 0.0  # when the answer was sent: requests overlapping in time were in flight together


COMMENTS_PER_ISSUE = 2


class SampleApiState:
    def __init__(
        self,
        bearer_token: str,
        api_key: str,
        issues: int = 0,
        charges: int = 0,
        customers: int = 0,
        events: int = 0,
        comments_per_issue: int = COMMENTS_PER_ISSUE,
        answer_delay: float = 0.0,
    ) -> None:
        self.bearer_token, self.api_key = bearer_token, api_key
        self.answer_delay = answer_delay  # seconds each answer takes, like a remote API's latency
        self.lock = threading.Lock()
        self.issues: list[dict] = []
        self.comments: dict[int, list[dict]] = {}
        self.charges: list[dict] = []
        self.customers = [
            {"id": f"cus_{n:05d}", "name": f"Customer {n}", "email": f"c{n}@example.com"}
            for n in range(1, customers + 1)
        ]
        self.events = [
            {"id": n, "kind": ("signup", "login", "purchase")[n % 3], "at": iso(EPOCH + dt.timedelta(minutes=n))}
            for n in range(1, events + 1)
        ]
        self.faults: list[Fault] = []
        self.log: list[LoggedRequest] = []
        for _ in range(issues):
            self.add_issue(comments=comments_per_issue)
        for _ in range(charges):
            self.add_charge()

    def add_issue(self, comments: int = COMMENTS_PER_ISSUE, updated_at: dt.datetime | None = None) -> dict:
        with self.lock:
            number = len(self.issues) + 1
            updated = updated_at or EPOCH + dt.timedelta(minutes=number)
            issue = {
                "id": 1000 + number,
                "number": number,
                "title": f"Issue {number}",
                "state": "open" if number % 4 else "closed",
                "labels": [{"name": "bug"}] if number % 5 == 0 else [],
                "updated_at": iso(updated),
            }
            self.issues.append(issue)
            self.comments[number] = [
                {"id": number * 100 + c, "body": f"Comment {c} on issue {number}", "updated_at": iso(updated)}
                for c in range(1, comments + 1)
            ]
            return issue

    def add_comment(self, number: int, updated_at: dt.datetime) -> dict:
        with self.lock:
            comments = self.comments[number]
            comment = {
                "id": number * 100 + len(comments) + 1,
                "body": f"Comment {len(comments) + 1} on issue {number}",
                "updated_at": iso(updated_at),
            }
            comments.append(comment)
            return comment

    def touch_issue(self, number: int, updated_at: dt.datetime, title: str | None = None) -> None:
        with self.lock:
            issue = self.issues[number - 1]
            issue["updated_at"] = iso(updated_at)
            if title is not None:
                issue["title"] = title

    def add_charge(self, updated_at: dt.datetime | None = None) -> dict:
        with self.lock:
            n = len(self.charges) + 1
            charge = {
                "id": f"ch_{n:06d}",
                "amount": 100 * n,
                "currency": "eur",
                "customer": f"cus_{n % 7 + 1:05d}",
                "updated_at": iso(updated_at or EPOCH + dt.timedelta(minutes=n)),
            }
            self.charges.append(charge)
            return charge

    def fail_next(self, path_prefix: str, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        self.faults.extend(Fault(path_prefix, status, headers or {}) for _ in range(times))

    def requests_to(self, path_prefix: str) -> list[LoggedRequest]:
        return [request for request in self.log if request.path.startswith(path_prefix)]


def _page(items: list, size: int, number: int) -> list:
    return items[(number - 1) * size : number * size]


class SampleApiHandler(JSONHandler):
    server: LoopbackServer[SampleApiState]

    @property
    def state(self) -> SampleApiState:
        return self.server.owner

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        logged = LoggedRequest("GET", parts.path, query, time.monotonic())
        with self.state.lock:
            self.state.log.append(logged)
            fault = next((f for f in self.state.faults if parts.path.startswith(f.path_prefix)), None)
            if fault is not None:
                self.state.faults.remove(fault)
        if self.state.answer_delay:
            time.sleep(self.state.answer_delay)  # the API's latency (the server answers each request in a thread)
        status, body, headers = (
            (fault.status, {"message": "injected"}, fault.headers)
            if fault is not None
            else self.route(parts.path, query)
        )
        logged.status = status
        logged.answered_at = time.monotonic()
        self.send_body(status, body, headers)

    def route(self, path: str, query: dict[str, str]) -> tuple[int, dict | list, dict]:
        segments = [s for s in path.split("/") if s]
        if segments == ["health"]:
            return 200, {"ok": True, "service": "sample_api"}, {}
        if segments[:1] == ["issues"]:
            if self.headers.get("Authorization") != f"Bearer {self.state.bearer_token}":
                return 401, {"message": "Bad credentials"}, {}
            if len(segments) == 1:
                return self.issues(query)
            if len(segments) == 3 and segments[2] == "comments" and segments[1].isdigit():
                comments = self.state.comments.get(int(segments[1]))
                if comments is None:
                    return 404, {"message": "Not Found"}, {}
                if "since" in query:
                    comments = [comment for comment in comments if comment["updated_at"] >= query["since"]]
                return self.header_linked(path, comments, query)
            return 404, {"message": "Not Found"}, {}
        if segments[:1] in (["charges"], ["customers"], ["events"]):
            if self.headers.get("X-Api-Key") != self.state.api_key:
                return 401, {"error": {"message": "Invalid API Key provided"}}, {}
            return getattr(self, segments[0])(query)
        return 404, {"message": "Not Found"}, {}

    def header_linked(self, path: str, items: list, query: dict[str, str]) -> tuple[int, list, dict]:
        size = min(int(query.get("per_page", 30)), 100)
        number = int(query.get("page", 1))
        headers = {}
        if number * size < len(items):
            next_query = urlencode({**query, "page": number + 1})
            headers["Link"] = f'<http://{self.headers["Host"]}{path}?{next_query}>; rel="next"'
        return 200, _page(items, size, number), headers

    def issues(self, query: dict[str, str]):
        items = self.state.issues
        if "since" in query:
            items = [issue for issue in items if issue["updated_at"] >= query["since"]]
        return self.header_linked("/issues", items, query)

    def charges(self, query: dict[str, str]):
        size = min(int(query.get("limit", 10)), 100)
        items = self.state.charges
        if query.get("updated_since"):
            items = [charge for charge in items if charge["updated_at"] >= query["updated_since"]]
        if query.get("starting_after"):
            ids = [charge["id"] for charge in items]
            start = ids.index(query["starting_after"]) + 1 if query["starting_after"] in ids else len(ids)
            items = items[start:]
        page = items[:size]
        # Like many APIs, the last page still names a cursor; only has_more says there is nothing after it.
        return 200, {"data": page, "has_more": len(items) > size, "next_cursor": page[-1]["id"] if page else None}, {}

    def customers(self, query: dict[str, str]):
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 10)), 100)
        return 200, {"items": self.state.customers[offset : offset + limit], "total": len(self.state.customers)}, {}

    def events(self, query: dict[str, str]):
        size, number = 25, int(query.get("page", 1))
        total_pages = max(1, -(-len(self.state.events) // size))
        return 200, {"results": _page(self.state.events, size, number), "page": number, "total_pages": total_pages}, {}


class SampleApiServer(LoopbackServer[SampleApiState]):
    # Child resources' requests come many at once, each on a new connection: with socketserver's backlog of 5 the
    # kernel drops connection attempts, which the client repeats only a second later.
    request_queue_size = 128


def serve_sample_api(state: SampleApiState, port: int = 0) -> LoopbackServer[SampleApiState]:
    """Started on 127.0.0.1 (a free port unless given); stop() it when done."""
    return SampleApiServer(SampleApiHandler, state, port).start()


SAMPLE_API_PORT = 8790
SAMPLE_API_CREDENTIALS = {"SAMPLE_API_TOKEN": "sample-api-local-token", "SAMPLE_API_KEY": "sample-api-local-key"}
SAMPLE_COUNTS = {"issues": 300, "charges": 500, "customers": 120, "events": 200}


def main() -> None:
    """`python -m dlt_platform.source_types.rest_api.local_api`: the local stack's sample API, credentials from the
    environment (SAMPLE_API_TOKEN, SAMPLE_API_KEY), until SIGTERM."""
    import argparse
    import os
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=SAMPLE_API_PORT)
    args = parser.parse_args()
    state = SampleApiState(os.environ["SAMPLE_API_TOKEN"], os.environ["SAMPLE_API_KEY"], **SAMPLE_COUNTS)
    server = SampleApiServer(SampleApiHandler, state, args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"sample API on {server.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
