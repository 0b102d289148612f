"""The HTTP session every request of a rest_api source goes through: dlt's retrying requests client with the
definition's limits, plus a request budget per host.

Retries are dlt's (`dlt.sources.helpers.requests.Client`): 429, 5xx and connection errors are retried up to
`max_attempts`; a 429's `Retry-After` sets the wait (capped at `max_retry_delay_seconds`), and a `Retry-After`
of 0 or in the past falls back to exponential back-off from `backoff_seconds`, so an API that says "now" is not
hammered. The budget sits in the transport adapter, under the retries, so every attempt counts against it.

The adapter is also where a run's RequestGuard sees every request about to leave, whoever built it (dlt's
client and paginators, requests' redirects, an OAuth2 token request): dlt's Client wraps the session's `send`
with its retries, so the adapter, which every attempt and every redirect hop passes through, is the one place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from urllib.parse import urlsplit

from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS, sanitize_url
from requests import ConnectionError as RequestsConnectionError
from requests import PreparedRequest, RequestException
from requests.adapters import HTTPAdapter

from dlt_platform.http import RateBudget
from dlt_platform.source_types.rest_api.credentials import Credential, without_credentials
from dlt_platform.source_types.rest_api.definition import HttpLimits
from dlt_platform.source_types.rest_api.errors import SecretNotAllowed, masked
from dlt_platform.source_types.rest_api.hosts import HostPolicy, url_host, written_host

REQUEST_TIMEOUT_SECONDS = 60


class HostBudgets:
    """Sliding-window budgets per host: requests per second and per window, as the definition sets them. Shared by
    the threads that fetch child resources concurrently (RateBudget is thread-safe)."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self._by_host: dict[str, list[RateBudget]] = {}
        self._lock = threading.Lock()

    def _budgets(self, host: str) -> list[RateBudget]:
        with self._lock:
            if host not in self._by_host:
                budgets = []
                # The window's budget first: the one that may make a request wait longest. A request then leaves
                # right after its turn in the per-second spacing, which concurrent requests take one at a time.
                if self.limits.requests_per_window:
                    budgets.append(RateBudget(self.limits.requests_per_window, self.limits.window_seconds))
                if self.limits.requests_per_second:
                    # One request per 1/rate seconds: spaced out rather than bursts at each second's start.
                    budgets.append(RateBudget(1, 1 / self.limits.requests_per_second))
                self._by_host[host] = budgets
            return self._by_host[host]

    def acquire(self, url: str) -> None:
        for budget in self._budgets(urlsplit(url).netloc):
            budget.acquire()


class RequestGuard:
    """What a run's requests may carry and reach: each request's host is checked (hosts.py), the credentials
    not bound to it are removed (credentials.py), and a request that would still carry a secret value there is
    refused. Failures of a request come out with every secret value masked, and without the original
    exception (whose message and request carry the URL, query-string key included) in their chain."""

    def __init__(
        self, hosts: HostPolicy, credentials: Iterable[Credential] = (), values: dict[str, str] | None = None
    ) -> None:
        self.hosts, self.credentials = hosts, list(credentials)
        self.values = {name: value for name, value in (values or {}).items() if value}
        _REDACTION.values |= set(self.values.values())

    def before_send(self, request) -> None:
        self.hosts.check(request.url, "request")
        without_credentials(request, self.credentials)
        host, port = url_host(request.url)
        carried = " ".join([request.url, *(str(value) for value in request.headers.values())])
        body = request.body.decode("utf-8", "replace") if isinstance(request.body, bytes) else str(request.body or "")
        for credential in self.credentials:
            value = self.values.get(credential.secret)
            if value and not credential.allowed_on(host, port) and (value in carried or value in body):
                raise SecretNotAllowed(
                    f"request: refused to send secret {credential.secret} to "
                    f"{written_host(host, port)}: it may go to {', '.join(credential.hosts)} "
                    "only (DLT_SOURCE_SECRETS)"
                )

    def mask(self, text: str) -> str:
        return masked(text, self.values.values())

    def masked_error(self, error: RequestException) -> RequestException:
        request = error.request.copy() if isinstance(error.request, PreparedRequest) else None
        if request is not None and request.url:
            request.url = self.mask(request.url)
        message = self.mask(str(error))
        try:
            return type(error)(message, request=request)
        except TypeError:  # an exception class with its own signature: the type retries look for is kept
            return RequestsConnectionError(message, request=request)

    def after_send(self, response) -> None:
        # requests' HTTPError (dlt raises it for an error status) names response.url, query-string key included.
        response.url = self.mask(response.url)


class GuardedAdapter(HTTPAdapter):
    """The transport under dlt's retries: every attempt and redirect hop takes its turn in the host's budget and,
    in a run, passes the RequestGuard."""

    def __init__(self, budgets: HostBudgets, guard: RequestGuard | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.budgets, self.guard = budgets, guard

    def send(self, request, *args, **kwargs):
        if self.guard is None:
            self.budgets.acquire(request.url)
            return super().send(request, *args, **kwargs)
        self.guard.before_send(request)
        self.budgets.acquire(request.url)
        try:
            response = super().send(request, *args, **kwargs)
        except RequestException as error:
            failure = self.guard.masked_error(error)
        else:
            self.guard.after_send(response)
            return response
        # Raised outside the except block: `from None` would still keep the original as __context__, which
        # dlt's trace and any traceback print.
        raise failure


class RedactQuerySecrets(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included, and dlt's client logs each request's
    URL (its own list of sensitive parameters redacted): an API key sent as a query parameter would reach the
    logs. This filter shows such parameters (dlt's names, plus the sources' own) and the values of the secrets
    of the runs in this process as ***."""

    def __init__(self) -> None:
        super().__init__()
        self.names = set(SENSITIVE_PARAMS)
        self.values: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                sanitize_url(arg, self.names) if isinstance(arg, str) and "?" in arg else arg for arg in record.args
            )
        if self.values:
            message = record.getMessage()
            hidden = masked(message, self.values)
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True


_REDACTION = RedactQuerySecrets()
for _logger in ("urllib3.connectionpool", "dlt"):
    logging.getLogger(_logger).addFilter(_REDACTION)


def budgeted_session(
    limits: HttpLimits, secret_params: AbstractSet[str] = frozenset(), guard: RequestGuard | None = None
):
    """A requests session for dlt's RESTClient (which checks statuses itself: raise_for_status off).
    `secret_params`: query parameters that carry a secret, kept out of urllib3's request log; `guard`: the
    run's RequestGuard, applied to every request the session sends."""
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
    adapter = GuardedAdapter(HostBudgets(limits), guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
