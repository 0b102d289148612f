"""HTTP with the retry policy every outbound call of the platform shares.

429 waits for Retry-After, 5xx and connection errors back off exponentially; both are bounded in attempts and
in seconds, so a run never hangs on a dead API. A sliding-window budget keeps one process under an API's
request quota (Cloudflare: 1,200 requests per 5 minutes per token) instead of learning it from 429s.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import httpx


class RateBudget:
    """At most `limit` requests in any `window` seconds; callers block until a slot frees."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self.window - (now - self._sent[0])
            time.sleep(max(wait, 0.001))


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    # Cloudflare blocks a token for 5 minutes after its quota; waiting longer than that is never useful.
    max_retry_after_seconds: float = 300.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)


def retry_after_seconds(response: httpx.Response, policy: RetryPolicy, attempt: int) -> float:
    header = response.headers.get("retry-after")
    try:
        seconds = float(header) if header is not None else policy.backoff(attempt)
    except ValueError:
        seconds = policy.backoff(attempt)
    return min(max(seconds, 0.0), policy.max_retry_after_seconds)


def send_with_retries(
    client: httpx.Client,
    request: httpx.Request,
    policy: RetryPolicy,
    budget: RateBudget | None = None,
    sleep=time.sleep,
) -> httpx.Response:
    """Send `request`; return the first response that is neither 429 nor 5xx, or the last one after all attempts."""
    last_error: Exception | None = None
    for attempt in range(policy.attempts):
        if budget is not None:
            budget.acquire()
        try:
            response = client.send(request)
        except httpx.TransportError as error:
            last_error = error
            if attempt + 1 < policy.attempts:
                sleep(policy.backoff(attempt))
            continue
        if response.status_code == 429 or response.status_code >= 500:
            if attempt + 1 < policy.attempts:
                wait = (
                    retry_after_seconds(response, policy, attempt)
                    if response.status_code == 429
                    else policy.backoff(attempt)
                )
                response.close()
                sleep(wait)
                continue
        return response
    # Connection-level failure on every attempt: name the host, never the full URL (it may carry a cursor).
    raise httpx.ConnectError(
        f"{request.url.host}:{request.url.port or ''} unreachable after {policy.attempts} attempts: {last_error}"
    )
