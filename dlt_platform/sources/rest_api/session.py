"""The HTTP session every request of a rest_api source goes through: dlt's retrying requests client with the
definition's limits, plus a request budget per host.

Retries are dlt's (`dlt.sources.helpers.requests.Client`): 429, 5xx and connection errors are retried up to
`max_attempts`; a 429's `Retry-After` sets the wait (capped at `max_retry_delay_seconds`), and a `Retry-After`
of 0 or in the past falls back to exponential back-off from `backoff_seconds`, so an API that says "now" is not
hammered. The budget sits in the transport adapter, under the retries, so every attempt counts against it.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS, sanitize_url
from requests.adapters import HTTPAdapter

from dlt_platform.config import HttpLimits
from dlt_platform.http import RateBudget

REQUEST_TIMEOUT_SECONDS = 60


class HostBudgets:
    """Sliding-window budgets per host: requests per second and per window, as the definition sets them."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self._by_host: dict[str, list[RateBudget]] = {}
        self._lock = threading.Lock()

    def _budgets(self, host: str) -> list[RateBudget]:
        with self._lock:
            if host not in self._by_host:
                budgets = []
                if self.limits.requests_per_second:
                    # One request per 1/rate seconds: spaced out rather than bursts at each second's start.
                    budgets.append(RateBudget(1, 1 / self.limits.requests_per_second))
                if self.limits.requests_per_window:
                    budgets.append(RateBudget(self.limits.requests_per_window, self.limits.window_seconds))
                self._by_host[host] = budgets
            return self._by_host[host]

    def acquire(self, url: str) -> None:
        for budget in self._budgets(urlsplit(url).netloc):
            budget.acquire()


class BudgetedAdapter(HTTPAdapter):
    def __init__(self, budgets: HostBudgets, **kwargs) -> None:
        super().__init__(**kwargs)
        self.budgets = budgets

    def send(self, request, *args, **kwargs):
        self.budgets.acquire(request.url)
        return super().send(request, *args, **kwargs)


class RedactQuerySecrets(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included: an API key sent as a query parameter
    would reach the logs. This filter shows such parameters as *** (dlt's names, plus the sources' own)."""

    def __init__(self) -> None:
        super().__init__()
        self.names = set(SENSITIVE_PARAMS)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(sanitize_url(arg, self.names) if isinstance(arg, str) and "?" in arg else arg
                                for arg in record.args)
        return True


_REDACTION = RedactQuerySecrets()
logging.getLogger("urllib3.connectionpool").addFilter(_REDACTION)


def budgeted_session(limits: HttpLimits, secret_params: set[str] = frozenset()):
    """A requests session for dlt's RESTClient (which checks statuses itself: raise_for_status off).
    `secret_params`: query parameters that carry a secret, kept out of urllib3's request log."""
    _REDACTION.names |= set(secret_params)
    client = Client(
        request_timeout=REQUEST_TIMEOUT_SECONDS,
        raise_for_status=False,
        request_max_attempts=limits.max_attempts,
        request_backoff_factor=limits.backoff_seconds,
        request_max_retry_delay=limits.max_retry_delay_seconds,
        respect_retry_after_header=True,
    )
    session = client.session
    adapter = BudgetedAdapter(HostBudgets(limits))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
