"""One-line failures of a rest_api run: the API refused the credentials, answered with an error or could not be
reached after dlt's retries, or the platform refused a secret or a host. They name the status, the endpoint
(secret query parameters shown as ***) and, for a refusal, the environment variables holding the credentials,
never their values: every value of the definition's secrets is masked in what a failure says."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from dlt.sources.helpers.rest_client.redaction import sanitize_url
from pydantic import BaseModel
from requests import HTTPError, RequestException

from dlt_platform.source_types.base import SourceError
from dlt_platform.source_types.rest_api.definition import EnvSecret, RestApiSourceDefinition
from dlt_platform.source_types.rest_api.rows import sensitive_params


class RestApiError(SourceError):
    """A rest_api run that cannot go on; the message is complete and holds no secret."""


class MissingSecret(RestApiError):
    """A secret's environment variable is not set."""


class SecretNotAllowed(RestApiError):
    """A definition names a secret the deployment does not list for sources, or uses it on a host it is not
    bound to (DLT_SOURCE_SECRETS)."""


class HostNotAllowed(RestApiError):
    """A request would reach the platform's own network or the Worker (hosts.py)."""


MASK = "***"


def masked(text: str, values: Iterable[str]) -> str:
    """`text` with every value (as is and URL-encoded, the longest first) shown as ***."""
    for value in sorted({value for value in values if value}, key=len, reverse=True):
        for form in dict.fromkeys((value, quote(value, safe=""), quote_plus(value), quote(value))):
            text = text.replace(form, MASK)
    return text


def env_names(value: object) -> list[str]:
    """Every environment variable a (dumped or model) definition part refers to."""
    if isinstance(value, EnvSecret):
        return [value.env]
    if isinstance(value, BaseModel):
        return [name for field in type(value).model_fields for name in env_names(getattr(value, field))]
    if isinstance(value, Mapping):
        return [name for item in value.values() for name in env_names(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in env_names(item)]
    return []


def secret_values(definition: RestApiSourceDefinition, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the definition's secrets, as a run reads them (to mask them)."""
    environ = os.environ if environ is None else environ
    return [environ[name] for name in env_names(definition.extract) if environ.get(name)]


def _chain(error: BaseException) -> list[BaseException]:
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _http_error_in(error: BaseException) -> HTTPError | None:
    return next((e for e in _chain(error) if isinstance(e, HTTPError) and e.response is not None), None)


def described_failure(
    error: BaseException, definition: RestApiSourceDefinition, secret_params: set[str]
) -> RestApiError | None:
    """The failure as one line, every secret value masked: an HTTP status or a request that failed after the
    retries, a refusal of the platform's (a secret, a host), or any failure whose chain would carry a secret
    value. None for anything else (the error is then reported as it is)."""
    values = secret_values(definition)
    described = _described(error, definition, secret_params)
    if described is None and any(value in str(e) for e in _chain(error) for value in values):
        root = _chain(error)[-1]  # the first failure, under dlt's wrappers
        described = RestApiError(
            f"{definition.source_id}: {type(root).__name__}: {(str(root).splitlines() or [''])[0]}"
        )
    if described is None:
        return None
    return type(described)(masked(str(described), values))


def _described(
    error: BaseException, definition: RestApiSourceDefinition, secret_params: set[str]
) -> RestApiError | None:
    refusal = next((e for e in _chain(error) if isinstance(e, RestApiError)), None)
    if refusal is not None:
        return refusal
    http_error = _http_error_in(error)
    if http_error is None:
        return _request_failure(error, definition, secret_params)
    response = http_error.response
    if response is None:  # raised before any answer: described as a request that failed
        return _request_failure(error, definition, secret_params)
    sensitive = sensitive_params(secret_params)  # the same redaction as the audit column
    method = response.request.method if response.request is not None else "GET"
    where = f"{method} {sanitize_url(response.url, sensitive)}"
    message = f"{definition.source_id}: {where} answered {response.status_code} {response.reason}"
    if response.status_code in (401, 403):
        names = env_names(definition.extract.client.auth) + env_names(definition.extract.client.headers or {})
        refused = (
            f"the credentials in {', '.join(sorted(set(names)))}" if names else "the request (no auth is configured)"
        )
        message += f": the API refused {refused}"
    elif response.status_code == 429 or response.status_code >= 500:
        message += f" after {definition.extract.http.max_attempts} attempts"
    return RestApiError(message + "; nothing was loaded")


def _request_failure(
    error: BaseException, definition: RestApiSourceDefinition, secret_params: set[str]
) -> RestApiError | None:
    """A request that could not be sent or answered (connection refused, timeout) after dlt's retries."""
    failed = next((e for e in _chain(error) if isinstance(e, RequestException)), None)
    if failed is None:
        return None
    request = failed.request
    sensitive = sensitive_params(secret_params)
    where = (
        f"{request.method} {sanitize_url(request.url, sensitive)}"
        if request is not None and isinstance(request.url, str) and request.url
        else "a request"
    )
    reason = str(failed).splitlines()[0] if str(failed) else type(failed).__name__
    return RestApiError(
        f"{definition.source_id}: {where} failed after {definition.extract.http.max_attempts} "
        f"attempts: {reason}; nothing was loaded"
    )
