"""Send signed sample deliveries to a webhook source of the local stack, as GitHub would.

    .venv/bin/python -m dlt_platform.source_types.webhook.send_local --count 100
    .venv/bin/python -m dlt_platform.source_types.webhook.send_local --github-examples

Each delivery is a GitHub-shaped event (push, issues, pull_request) with a fresh `X-GitHub-Delivery` id,
`X-GitHub-Event`, and `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub's documented
scheme), keyed with the local signing secret the stack generated into `.local/worker.env`. `--github-examples`
sends GitHub's published example deliveries instead (329 full-size payloads over 58 event types, from the npm
devDependency @octokit/webhooks-examples). Stripe deliveries (`stripe_delivery`) are signed as Stripe documents:
`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Deliveries go out concurrently over HTTP; the
summary counts answers by status and reason and gives deliveries per second.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt, wait_exponential

from dlt_platform.local.stack import LOCAL_WEBHOOK_SECRET, read_env_file
from dlt_platform.settings import PROJECT_ROOT

EVENTS = ("push", "issues", "pull_request")


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    body: bytes
    headers: dict[str, str]


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sample_event(number: int, event: str) -> dict:
    repository = {"id": 1000 + number % 7, "full_name": f"acme/repo-{number % 7}"}
    sender = {"login": f"dev{number % 23}", "id": 500 + number % 23}
    if event == "push":
        return {
            "ref": "refs/heads/main",
            "after": uuid.uuid4().hex,
            "repository": repository,
            "sender": sender,
            "commits": [{"id": uuid.uuid4().hex, "message": f"change {number}.{n}"} for n in range(1 + number % 3)],
        }
    if event == "issues":
        return {
            "action": "opened",
            "issue": {"number": number, "title": f"Issue {number}"},
            "repository": repository,
            "sender": sender,
        }
    return {
        "action": "opened",
        "number": number,
        "pull_request": {"title": f"PR {number}", "draft": number % 2 == 0},
        "repository": repository,
        "sender": sender,
    }


def github_delivery(secret: str, number: int, event: str | None = None) -> Delivery:
    event = event or EVENTS[number % len(EVENTS)]
    body = orjson.dumps(sample_event(number, event))
    delivery_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/local",
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": github_signature(secret, body),
    }
    return Delivery(delivery_id, event, body, headers)


# GitHub's published example deliveries (npm @octokit/webhooks-examples, a pinned devDependency of the project).
GITHUB_EXAMPLES = PROJECT_ROOT / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"


def github_examples() -> list[tuple[str, bytes]]:
    """(X-GitHub-Event, body) of every published example delivery, the body as GitHub formats it (indented)."""
    if not GITHUB_EXAMPLES.exists():
        raise FileNotFoundError(f"{GITHUB_EXAMPLES} is missing: install the npm devDependencies (npm ci)")
    events = json.loads(GITHUB_EXAMPLES.read_text(encoding="utf-8"))
    return [
        (event["name"], json.dumps(example, indent=2).encode()) for event in events for example in event["examples"]
    ]


def github_example_deliveries(secret: str) -> list[Delivery]:
    deliveries = []
    for event, body in github_examples():
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/local",
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Event": event,
            "X-Hub-Signature-256": github_signature(secret, body),
        }
        deliveries.append(Delivery(delivery_id, event, body, headers))
    return deliveries


def stripe_signature(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def stripe_delivery(secret: str, event_id: str, event_type: str, body: bytes) -> Delivery:
    """A Stripe event as Stripe sends it: the id and type are in the body, the signature covers the send time."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": stripe_signature(secret, body, int(time.time())),
    }
    return Delivery(event_id, event_type, body, headers)


# A sender retries what the Worker could not take now (5xx, 429, a dropped connection), as GitHub's redelivery or
# Stripe's retries would: the Worker answers a repeat of a delivery it kept as a duplicate, so nothing doubles.
ATTEMPTS = 4
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class SendSummary:
    answers: collections.Counter = field(default_factory=collections.Counter)  # final (status, reason or outcome)
    retried: collections.Counter = field(default_factory=collections.Counter)  # answers that were retried
    accepted_ids: list[str] = field(default_factory=list)  # kept by the Worker (on the first or a later attempt)
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return len(self.accepted_ids)

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


async def _send_all(url: str, deliveries: list[Delivery], concurrency: int, summary: SendSummary) -> None:
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    for delivery in deliveries:
        queue.put_nowait(delivery)

    async def attempt(client: httpx.AsyncClient, delivery: Delivery, retried: bool) -> tuple[int, str, bool]:
        """(status, outcome, kept) of one POST; status 0 when the connection failed."""
        try:
            response = await client.post(url, content=delivery.body, headers=delivery.headers)
        except httpx.TransportError as error:
            return 0, type(error).__name__, False
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code == 200:
            # A duplicate on a retry is this delivery, kept by an earlier attempt whose answer got lost.
            duplicate = bool(answer.get("duplicate")) and not retried
            return 200, "duplicate" if duplicate else "accepted", not duplicate
        return response.status_code, answer.get("reason") or response.reason_phrase, False

    def count_retry(state: RetryCallState) -> None:
        assert state.outcome is not None  # tenacity calls back after an attempt
        status, outcome, _ = state.outcome.result()
        summary.retried[(status, outcome)] += 1

    def last_answer(state: RetryCallState) -> tuple[int, str, bool]:
        assert state.outcome is not None  # tenacity gives up only after an attempt
        return state.outcome.result()

    async def post(client: httpx.AsyncClient, delivery: Delivery) -> tuple[int, str, bool]:
        """(status, outcome, kept) of the last attempt."""
        attempts = 0

        async def next_attempt() -> tuple[int, str, bool]:
            nonlocal attempts
            attempts += 1
            return await attempt(client, delivery, retried=attempts > 1)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=0.2),
            retry=retry_if_result(lambda answer: answer[0] in RETRY_STATUSES or answer[0] == 0),
            before_sleep=count_retry,
            retry_error_callback=last_answer,
        )
        return await retrying(next_attempt)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            delivery = queue.get_nowait()
            status, outcome, kept = await post(client, delivery)
            summary.answers[(status, outcome)] += 1
            if kept:
                summary.accepted_ids.append(delivery.delivery_id)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))


def send(url: str, deliveries: list[Delivery], concurrency: int = 16) -> SendSummary:
    """POST every delivery to `url` from `concurrency` concurrent senders; what came back, counted."""
    summary = SendSummary()
    started = time.monotonic()
    sending = _send_all(url, deliveries, concurrency, summary)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(sending)
    else:
        # Called where an event loop already runs in this thread (a notebook, Playwright's sync API): give the
        # senders a loop of their own in another thread.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, sending).result()
    summary.seconds = time.monotonic() - started
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="deliveries to send (default 100)")
    parser.add_argument(
        "--github-examples",
        action="store_true",
        help="send GitHub's published example deliveries (329) instead of --count samples",
    )
    parser.add_argument("--source-id", default="github_events", help="webhook source (default github_events)")
    parser.add_argument("--url", default="http://127.0.0.1:8787", help="the Worker (default the local stack's)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders (default 16)")
    parser.add_argument("--state-dir", type=Path, default=PROJECT_ROOT / ".local", help="where worker.env is")
    args = parser.parse_args(argv)
    secret = read_env_file(args.state_dir / "worker.env").get(LOCAL_WEBHOOK_SECRET)
    if not secret:
        parser.error(f"{LOCAL_WEBHOOK_SECRET} not found in {args.state_dir / 'worker.env'}: start the stack (make up)")
    if args.github_examples:
        deliveries = github_example_deliveries(secret)
    else:
        deliveries = [github_delivery(secret, number) for number in range(args.count)]
    summary = send(f"{args.url.rstrip('/')}/hooks/{args.source_id}", deliveries, args.concurrency)
    for (status, outcome), count in sorted(summary.answers.items()):
        print(f"{status} {outcome}: {count}")
    for (status, outcome), count in sorted(summary.retried.items()):
        print(f"retried after {status} {outcome}: {count}")
    print(f"{summary.accepted} accepted in {summary.seconds:.1f} s ({summary.per_second:.0f} deliveries/s)")
    return 0 if summary.accepted == len(deliveries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
