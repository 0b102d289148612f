"""HTTP with the retry policy every outbound call of the platform shares (retries by tenacity).

429 waits for Retry-After, 5xx and connection errors back off exponentially; both are bounded in attempts and
in seconds, so a run never hangs on a dead API. A sliding-window budget keeps one process under an API's
request quota (Cloudflare: 1,200 requests per 5 minutes per token) instead of learning it from 429s.
Both take their clock and sleep from their policy, so tests check the waits without waiting.
Every httpx client of the platform comes from `http_client`, which shares one TLS context per process.
"""

from __future__ import annotations

import collections
import functools
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's own default context (certifi's CA bundle, SSL_CERT_FILE and SSLKEYLOGFILE honoured), built once per
    process: httpx builds a new one for every client, about 20 ms of CPU to load the CA bundle, and sensors open a
    Worker client on every tick."""
    return httpx.create_ssl_context()


def http_client(**options) -> httpx.Client:
    """An httpx.Client with these options and the process's shared TLS context."""
    return httpx.Client(verify=tls_context(), **options)


class RateBudget:
    """At most `limit` requests in any `window` seconds; callers block until a slot frees."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.window = limit, window
        self._clock, self._sleep = clock, sleep
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self.window - (now - self._sent[0])
            self._sleep(max(wait, 0.001))


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    # Cloudflare blocks a token for 5 minutes after its quota; waiting longer than that is never useful.
    max_retry_after_seconds: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """Pause after the failed attempt number `attempt` (0-based)."""
        return min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)


def retry_after_seconds(response: httpx.Response, policy: RetryPolicy, attempt: int) -> float:
    header = response.headers.get("retry-after")
    try:
        seconds = float(header) if header is not None else policy.backoff(attempt)
    except ValueError:
        seconds = policy.backoff(attempt)
    return min(max(seconds, 0.0), policy.max_retry_after_seconds)


def _retryable(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def _pause(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def pause(state: RetryCallState) -> float:
        attempt = state.attempt_number - 1
        outcome = state.outcome
        if outcome is not None and not outcome.failed and outcome.result().status_code == 429:
            return retry_after_seconds(outcome.result(), policy, attempt)
        return policy.backoff(attempt)

    return pause


def send_with_retries(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy, budget: RateBudget | None = None
) -> httpx.Response:
    """Send `request`; return the first response that is neither 429 nor 5xx, or the last one after all attempts."""

    def send() -> httpx.Response:
        if budget is not None:
            budget.acquire()
        return client.send(request)

    def give_up(state: RetryCallState) -> httpx.Response:
        outcome = state.outcome
        assert outcome is not None  # tenacity gives up only after an attempt
        error = outcome.exception()
        if error is None:
            return outcome.result()
        # Connection-level failure on every attempt: name the host, never the full URL (it may carry a cursor).
        raise httpx.ConnectError(
            f"{request.url.host}:{request.url.port or ''} unreachable after {policy.attempts} attempts: {error}"
        )

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_pause(policy),
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(_retryable),
        sleep=policy.sleep,
        retry_error_callback=give_up,
    )
    return retrying(send)
