"""One-line failures of a rest_api run: the API refused the credentials, or answered with an error after dlt's
retries. They name the status, the endpoint (secret query parameters shown as ***) and, for a refusal, the
environment variables holding the credentials, never their values."""

from __future__ import annotations

from collections.abc import Mapping

from dlt.sources.helpers.rest_client.redaction import sanitize_url
from pydantic import BaseModel
from requests import HTTPError

from dlt_platform.config import EnvSecret, RestApiSourceDefinition
from dlt_platform.sources.rest_api.rows import CurrentPage


class RestApiError(RuntimeError):
    """A rest_api run that cannot go on; the message is complete and holds no secret."""


class MissingSecret(RestApiError):
    """A secret's environment variable is not set."""


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


def _http_error_in(error: BaseException) -> HTTPError | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, HTTPError) and current.response is not None:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def described_failure(error: BaseException, definition: RestApiSourceDefinition, secret_params: set[str]
                      ) -> RestApiError | None:
    """The failure as one line when an HTTP status ended the run; None for anything else."""
    http_error = _http_error_in(error)
    if http_error is None:
        return None
    response = http_error.response
    sensitive = CurrentPage(secret_params).sensitive  # the same redaction as the audit column
    method = response.request.method if response.request is not None else "GET"
    where = f"{method} {sanitize_url(response.url, sensitive)}"
    message = f"{definition.source_id}: {where} answered {response.status_code} {response.reason}"
    if response.status_code in (401, 403):
        names = env_names(definition.extract.client.auth) + env_names(definition.extract.client.headers or {})
        refused = f"the credentials in {', '.join(sorted(set(names)))}" if names else "the request (no auth is configured)"
        message += f": the API refused {refused}"
    elif response.status_code == 429 or response.status_code >= 500:
        message += f" after {definition.extract.http.max_attempts} attempts"
    return RestApiError(message + "; nothing was loaded")
