"""Which secrets a rest_api source may use, and where each may be sent.

A deployment lists the secrets sources may use, each bound to the hosts it may be sent to (DLT_SOURCE_SECRETS,
read in settings.py). Before any request a run checks that every secret its definition names is listed and
bound to base_url's host (and, for OAuth2, to the token URL's host). While it runs, a request to any other host
(an absolute endpoint path, a next link, a redirect) goes out without the credential: the headers and query
parameters that carry it are removed (session.py applies this to every request the source sends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dlt_platform.definition_base import is_platform_secret
from dlt_platform.source_types.rest_api.definition import (
    ApiKeyAuth,
    BearerAuth,
    EnvSecret,
    HttpBasicAuth,
    OAuth2ClientCredentialsAuth,
    RestApiSourceDefinition,
)
from dlt_platform.source_types.rest_api.errors import SecretNotAllowed
from dlt_platform.source_types.rest_api.hosts import matches_any, url_host, written_host

AUTHORIZATION = "Authorization"


@dataclass(frozen=True)
class Credential:
    """One secret of a definition: where the definition names it, the hosts it may go to, and the request
    headers and query parameters that carry it."""

    field: str
    secret: str
    hosts: tuple[str, ...]
    headers: tuple[str, ...] = ()
    params: tuple[str, ...] = ()

    def allowed_on(self, host: str, port: int) -> bool:
        return matches_any(self.hosts, host, port)


def _named(definition: RestApiSourceDefinition) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """(field, secret name, headers, params) of every secret the definition names."""
    client = definition.extract.client
    auth = client.auth
    named: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = []
    if isinstance(auth, BearerAuth):
        named.append(("extract.client.auth.token", auth.token.env, (AUTHORIZATION,), ()))
    elif isinstance(auth, ApiKeyAuth):
        in_query = auth.location in ("query", "param")
        named.append(
            (
                "extract.client.auth.api_key",
                auth.api_key.env,
                () if in_query else (auth.name,),
                (auth.name,) if in_query else (),
            )
        )
    elif isinstance(auth, HttpBasicAuth):
        for name in ("username", "password"):
            if isinstance(getattr(auth, name), EnvSecret):
                named.append((f"extract.client.auth.{name}", getattr(auth, name).env, (AUTHORIZATION,), ()))
    elif isinstance(auth, OAuth2ClientCredentialsAuth):
        # Sent in the token request's body; the access token they buy goes in Authorization.
        for name in ("client_id", "client_secret"):
            if isinstance(getattr(auth, name), EnvSecret):
                named.append((f"extract.client.auth.{name}", getattr(auth, name).env, (AUTHORIZATION,), ()))
    for header, value in (client.headers or {}).items():
        if isinstance(value, EnvSecret):
            named.append((f"extract.client.headers.{header}", value.env, (header,), ()))
    return named


def source_credentials(
    definition: RestApiSourceDefinition, secret_hosts: Mapping[str, tuple[str, ...]]
) -> list[Credential]:
    """The definition's secrets with their hosts. Raises SecretNotAllowed (one line naming the field and the
    secret's name) for a platform secret, a secret DLT_SOURCE_SECRETS does not list, or one not bound to the
    host it would be sent to."""
    client = definition.extract.client
    credentials = []
    for field, secret, headers, params in _named(definition):
        if is_platform_secret(secret):
            raise SecretNotAllowed(f"{field}: {secret} is a platform secret: sources may never use it")
        if secret not in secret_hosts:
            raise SecretNotAllowed(
                f"{field}: secret {secret} is not listed for sources in DLT_SOURCE_SECRETS "
                "(the deployment lists each secret sources may use with the hosts it may be "
                "sent to)"
            )
        credential = Credential(field, secret, tuple(secret_hosts[secret]), headers, params)
        targets = [("extract.client.base_url", client.base_url)]
        if isinstance(client.auth, OAuth2ClientCredentialsAuth):
            targets.append(("extract.client.auth.access_token_url", client.auth.access_token_url))
        for target_field, url in targets:
            host, port = url_host(url)
            if not credential.allowed_on(host, port):
                raise SecretNotAllowed(
                    f"{field}: secret {secret} may be sent to {', '.join(credential.hosts)} "
                    f"only (DLT_SOURCE_SECRETS), not to {written_host(host, port)} of "
                    f"{target_field}"
                )
        credentials.append(credential)
    return credentials


def without_credentials(request, credentials: list[Credential]) -> None:
    """Removes from a prepared request the headers and query parameters of every credential that may not go
    to its host."""
    host, port = url_host(request.url)
    away = [credential for credential in credentials if not credential.allowed_on(host, port)]
    for credential in away:
        for header in credential.headers:
            request.headers.pop(header, None)  # requests' headers ignore case
    params = {param.lower() for credential in away for param in credential.params}
    if params:
        parts = urlsplit(request.url)
        kept = [
            (key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key.lower() not in params
        ]
        request.url = urlunsplit(parts._replace(query=urlencode(kept)))
