"""Secrets of rest_api sources stay with the hosts they are bound to (DLT_SOURCE_SECRETS), sources stay off the
platform's own network, and no failure carries a secret value.

Two loopback servers: the API a definition reads (its secrets are bound to its host:port) and an "attacker"
that links, redirects or is named as an absolute endpoint path. Both are allowed as private hosts, so what is
tested is where credentials go; the refusals of private hosts are tested with nothing allowed.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote, urlsplit

import pytest

from dlt_platform.config import DefinitionError, parse_definition
from dlt_platform.loads import run_load
from dlt_platform.local.loopback import JSONHandler, LoopbackServer
from dlt_platform.settings import Settings, SettingsError
from dlt_platform.source_types.rest_api.errors import HostNotAllowed, RestApiError, SecretNotAllowed

TOKEN_ENV, KEY_ENV, HEADER_ENV = "PROBE_API_TOKEN", "PROBE_API_KEY", "PROBE_HEADER_SECRET"
SECRETS = {TOKEN_ENV: "probe-token-7f3a9c", KEY_ENV: "probe-key-41d2e8", HEADER_ENV: "probe-header-c0ffee"}
FAST_HTTP = {"max_attempts": 2, "backoff_seconds": 0.05, "max_retry_delay_seconds": 1}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]

    def secrets(self) -> list[str]:
        """Names of the secrets whose value this request carried, in its URL or any header."""
        carried = " ".join([unquote(self.path), *self.headers.values()])
        return sorted(name for name, value in SECRETS.items() if value in carried)


@dataclass
class ProbeState:
    """Answers by path: (status, JSON body, headers); anything else answers an empty list."""

    routes: dict[str, tuple[int, object, dict]] = field(default_factory=dict)
    log: list[Seen] = field(default_factory=list)
    url: str = ""


class ProbeHandler(JSONHandler):
    def do_GET(self) -> None:
        state: ProbeState = self.server.owner
        body = self.read_body().decode()
        state.log.append(Seen(self.path, {**dict(self.headers), **({"body": body} if body else {})}))
        status, answer, headers = state.routes.get(urlsplit(self.path).path, (200, [], {}))
        self.send_body(status, answer, headers)

    do_POST = do_GET


@pytest.fixture
def servers(monkeypatch):
    api, attacker = ProbeState(), ProbeState()
    with LoopbackServer(ProbeHandler, api) as api_server, LoopbackServer(ProbeHandler, attacker) as attacker_server:
        api.url, attacker.url = api_server.url, attacker_server.url
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        api_host = urlsplit(api.url).netloc
        monkeypatch.setenv("DLT_SOURCE_SECRETS", json.dumps({name: [api_host] for name in SECRETS}))
        monkeypatch.setenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS", f"{api_host},{urlsplit(attacker.url).netloc}")
        yield api, attacker


@pytest.fixture
def settings(tmp_path):
    return Settings(config_path=tmp_path / "sources.json", data_dir=tmp_path / "data", destination_override="duckdb")


def definition(base_url: str, resources: list[dict], auth: dict | None = None, headers: dict | None = None,
               paginator: dict | None = None):
    client = {"base_url": base_url, **({"auth": auth} if auth else {}), **({"headers": headers} if headers else {}),
              **({"paginator": paginator} if paginator else {})}
    return parse_definition({"source_id": "probe", "source_type": "rest_api",
                             "destination": {"type": "duckdb", "dataset": "probe"},
                             "extract": {"client": client, "resources": resources, "http": dict(FAST_HTTP)}})


BEARER = {"type": "bearer", "token": {"env": TOKEN_ENV}}
KEY_IN_HEADER = {"type": "api_key", "name": "X-Api-Key", "api_key": {"env": KEY_ENV}}
KEY_IN_QUERY = {"type": "api_key", "name": "sig", "location": "query", "api_key": {"env": KEY_ENV}}
ENV_HEADER = {"X-Probe-Secret": {"env": HEADER_ENV}}


def items(count: int, start: int = 0) -> list[dict]:
    return [{"id": start + number} for number in range(count)]


# --- credentials stay with their hosts ------------------------------------------------------------------------


def test_an_absolute_endpoint_path_to_another_host_carries_no_credential(servers, settings):
    api, attacker = servers
    probe = definition(api.url, [
        {"name": "own", "endpoint": {"path": "own", "paginator": {"type": "single_page"}}},
        {"name": "elsewhere", "endpoint": {"path": f"{attacker.url}/steal", "paginator": {"type": "single_page"}}},
    ], auth=KEY_IN_QUERY, headers=ENV_HEADER)
    api.routes["/own"] = (200, items(2), {})

    run_load(probe, settings)

    assert [seen.secrets() for seen in api.log] == [[KEY_ENV, HEADER_ENV]]  # the API's own host gets both
    assert [seen.path for seen in attacker.log] == ["/steal"] and attacker.log[0].secrets() == []


def test_a_json_link_next_url_on_another_host_carries_no_credential(servers, settings):
    api, attacker = servers
    api.routes["/issues"] = (200, {"items": items(3), "next": f"{attacker.url}/page2"}, {})
    probe = definition(api.url, [{"name": "issues", "endpoint": {
        "path": "issues", "data_selector": "items", "paginator": {"type": "json_link", "next_url_path": "next"}}}],
        auth=BEARER, headers=ENV_HEADER)

    run_load(probe, settings)

    assert api.log[0].secrets() == [TOKEN_ENV, HEADER_ENV]
    assert [seen.path for seen in attacker.log] == ["/page2"] and attacker.log[0].secrets() == []


def test_a_header_link_next_on_another_host_carries_no_credential(servers, settings):
    api, attacker = servers
    api.routes["/issues"] = (200, items(3), {"Link": f'<{attacker.url}/page2?per_page=3>; rel="next"'})
    probe = definition(api.url, [{"name": "issues", "endpoint": {"path": "issues"}}], auth=BEARER,
                       paginator={"type": "header_link"})

    run_load(probe, settings)

    assert api.log[0].secrets() == [TOKEN_ENV]
    assert [seen.path for seen in attacker.log] == ["/page2?per_page=3"] and attacker.log[0].secrets() == []


def test_an_auto_detected_next_link_on_another_host_carries_no_credential(servers, settings):
    api, attacker = servers
    api.routes["/issues"] = (200, {"results": items(3), "next": f"{attacker.url}/page2"}, {})
    probe = definition(api.url, [{"name": "issues", "endpoint": {"path": "issues"}}], auth=BEARER,
                       headers=ENV_HEADER)  # no paginator: dlt detects the next link

    run_load(probe, settings)

    assert api.log[0].secrets() == [TOKEN_ENV, HEADER_ENV]
    assert [seen.path for seen in attacker.log] == ["/page2"] and attacker.log[0].secrets() == []


def test_a_redirect_to_another_host_carries_no_env_header_and_no_api_key(servers, settings):
    api, attacker = servers
    api.routes["/start"] = (302, {}, {"Location": f"{attacker.url}/landing"})
    probe = definition(api.url, [{"name": "moved", "endpoint": {"path": "start", "paginator": {"type": "single_page"}}}],
                       auth=KEY_IN_HEADER, headers=ENV_HEADER)

    run_load(probe, settings)

    assert api.log[0].secrets() == [KEY_ENV, HEADER_ENV]
    assert [seen.path for seen in attacker.log] == ["/landing"] and attacker.log[0].secrets() == []


def test_a_redirect_within_the_bound_host_keeps_the_credentials(servers, settings):
    api, _attacker = servers
    api.routes["/start"] = (302, {}, {"Location": f"{api.url}/moved"})
    api.routes["/moved"] = (200, items(2), {})
    probe = definition(api.url, [{"name": "moved", "endpoint": {"path": "start", "paginator": {"type": "single_page"}}}],
                       auth=KEY_IN_HEADER, headers=ENV_HEADER)

    assert run_load(probe, settings).rows_by_table["moved"] == 2
    assert [(seen.path, seen.secrets()) for seen in api.log] == [("/start", [KEY_ENV, HEADER_ENV]),
                                                                   ("/moved", [KEY_ENV, HEADER_ENV])]


def test_an_oauth2_token_stays_with_its_host(servers, settings):
    api, attacker = servers
    bought = "bought-access-token-e1f2"
    api.routes["/token"] = (200, {"access_token": bought, "expires_in": 3600}, {})
    api.routes["/own"] = (200, items(2), {})
    probe = definition(api.url, [
        {"name": "own", "endpoint": {"path": "own", "paginator": {"type": "single_page"}}},
        {"name": "elsewhere", "endpoint": {"path": f"{attacker.url}/steal", "paginator": {"type": "single_page"}}},
    ], auth={"type": "oauth2_client_credentials", "access_token_url": f"{api.url}/token",
             "client_id": "loader", "client_secret": {"env": KEY_ENV}})

    run_load(probe, settings)

    # dlt asks for a token per resource; the client secret goes to the token URL's host only.
    tokens, own = [[seen for seen in api.log if seen.path == path] for path in ("/token", "/own")]
    assert tokens and all(seen.secrets() == [KEY_ENV] for seen in tokens)
    assert [seen.headers["Authorization"] for seen in own] == [f"Bearer {bought}"]
    assert [seen.path for seen in attacker.log] == ["/steal"] and "Authorization" not in attacker.log[0].headers


# --- secrets a definition may name ------------------------------------------------------------------------------


def test_a_platform_secret_is_refused_by_the_definition_model(monkeypatch):
    monkeypatch.setenv("DLT_INTERNAL_TOKEN", "internal-token-value-9d8e")
    with pytest.raises(DefinitionError) as refused:
        definition("https://api.example.com", [{"name": "issues", "endpoint": {"path": "issues"}}],
                   auth={"type": "bearer", "token": {"env": "DLT_INTERNAL_TOKEN"}})
    message = str(refused.value)
    assert "extract.client.auth" in message and "DLT_INTERNAL_TOKEN names a platform secret" in message
    assert "internal-token-value-9d8e" not in message


def test_an_unlisted_secret_is_refused_before_any_request(servers, settings, monkeypatch):
    api, _attacker = servers
    monkeypatch.setenv("PROBE_UNLISTED", "unlisted-value-5b6c")
    probe = definition(api.url, [{"name": "issues", "endpoint": {"path": "issues"}}],
                       auth={"type": "bearer", "token": {"env": "PROBE_UNLISTED"}})

    with pytest.raises(SecretNotAllowed) as refused:
        run_load(probe, settings)

    assert str(refused.value).startswith("extract.client.auth.token: secret PROBE_UNLISTED is not listed for sources "
                                         "in DLT_SOURCE_SECRETS")
    assert "unlisted-value-5b6c" not in str(refused.value) and api.log == []


def test_a_secret_bound_to_other_hosts_is_refused_before_any_request(servers, settings, monkeypatch):
    api, attacker = servers
    # The header secret is bound to the API; the definition sends it to the attacker's host as its base_url.
    probe = definition(attacker.url, [{"name": "issues", "endpoint": {"path": "issues"}}], headers=ENV_HEADER)

    with pytest.raises(SecretNotAllowed) as refused:
        run_load(probe, settings)

    api_host, attacker_host = urlsplit(api.url).netloc, urlsplit(attacker.url).netloc
    assert str(refused.value) == (f"extract.client.headers.X-Probe-Secret: secret {HEADER_ENV} may be sent to "
                                  f"{api_host} only (DLT_SOURCE_SECRETS), not to {attacker_host} of "
                                  "extract.client.base_url")
    assert attacker.log == []


# --- hosts a source may reach -----------------------------------------------------------------------------------


def no_auth(base_url: str):
    return definition(base_url, [{"name": "issues", "endpoint": {"path": "issues"}}])


def test_the_metadata_address_is_refused_before_any_request(settings, monkeypatch):
    monkeypatch.delenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS", raising=False)
    with pytest.raises(HostNotAllowed) as refused:
        run_load(no_auth("http://169.254.169.254/latest"), settings)
    assert str(refused.value).startswith("extract.client.base_url: 169.254.169.254:80 is a loopback, link-local, "
                                         "private or unspecified address")


def test_loopback_is_refused_unless_allowed_and_names_are_resolved_first(servers, settings, monkeypatch):
    api, _attacker = servers
    monkeypatch.delenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS")
    with pytest.raises(HostNotAllowed, match=r"^extract.client.base_url: 127\.0\.0\.1:\d+ is a loopback"):
        run_load(no_auth(api.url), settings)
    # Allowing 127.0.0.1:<port> does not allow a name that resolves there.
    port = urlsplit(api.url).port
    monkeypatch.setenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS", f"127.0.0.1:{port}")
    with pytest.raises(HostNotAllowed, match=rf"^extract.client.base_url: localhost:{port} resolves to "):
        run_load(no_auth(f"http://localhost:{port}"), settings)
    assert api.log == []


def test_the_workers_own_host_is_refused(servers, settings, monkeypatch):
    api, _attacker = servers
    as_worker = Settings(config_path=settings.config_path, data_dir=settings.data_dir, destination_override="duckdb",
                         orchestrator_url="https://dlt-orchestrator.example.workers.dev")
    with pytest.raises(HostNotAllowed) as refused:
        run_load(no_auth("https://DLT-orchestrator.example.workers.dev/internal/webhooks"), as_worker)
    assert "dlt-orchestrator.example.workers.dev:443 is the orchestrator Worker's own host" in str(refused.value)
    # Locally the Worker is on loopback too: its host:port is refused while the sample API's is allowed.
    monkeypatch.setenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS", "127.0.0.1:8790")
    local_worker = Settings(config_path=settings.config_path, data_dir=settings.data_dir,
                            destination_override="duckdb", orchestrator_url=api.url)
    with pytest.raises(HostNotAllowed, match="is the orchestrator Worker's own host"):
        run_load(no_auth(api.url), local_worker)
    assert api.log == []


def test_a_redirect_to_the_metadata_address_is_refused_without_connecting(servers, settings):
    api, _attacker = servers
    api.routes["/start"] = (302, {}, {"Location": "http://169.254.169.254/latest/meta-data/"})

    with pytest.raises(RestApiError) as refused:
        run_load(definition(api.url, [{"name": "moved", "endpoint": {"path": "start"}}]), settings)

    assert str(refused.value).startswith("request: 169.254.169.254:80 is a loopback, link-local, private or "
                                         "unspecified address")
    assert [seen.path for seen in api.log] == ["/start"]


# --- no secret value in failures, logs or dlt's trace ---------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_query_key_on_a_connection_error_is_masked_everywhere(settings, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    key = "k3y/with+plus=and%sign"  # URL-encoded differently by each layer
    host = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.setenv("DLT_SOURCE_SECRETS", json.dumps({KEY_ENV: [host]}))
    monkeypatch.setenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS", host)
    probe = definition(f"http://{host}", [{"name": "issues", "endpoint": {"path": "x"}}], auth=KEY_IN_QUERY)
    forms = {key, quote(key, safe=""), quote_plus(key), quote(key)}

    with pytest.raises(RestApiError) as failure:
        run_load(probe, settings)

    message = str(failure.value)
    assert message.startswith(f"probe: GET http://{host}/x?sig=*** failed after 2 attempts: ") and "\n" not in message
    chain, current = [], failure.value
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    texts = [str(error) for error in chain] + [caplog.text]
    assert not [text for text in texts if any(form in text for form in forms)]
    traces = list((settings.data_dir / "pipelines").rglob("trace.pickle"))
    assert traces, "dlt keeps the failed run's trace"
    assert not [path for path in traces if any(form.encode() in path.read_bytes() for form in forms)]


@pytest.mark.parametrize(("value", "says"), [
    ("GITHUB_TOKEN=api.github.com", 'DLT_SOURCE_SECRETS: expected a JSON object {"NAME": ["host", ...]}'),
    ('{"DLT_OPERATOR_TOKEN": ["api.example.com"]}', "DLT_SOURCE_SECRETS: DLT_OPERATOR_TOKEN is a platform secret"),
    ('{"GITHUB_TOKEN": "api.github.com"}', "DLT_SOURCE_SECRETS: GITHUB_TOKEN: expected a non-empty list of hosts"),
    ('{"GITHUB_TOKEN": ["https://api.github.com/"]}', "DLT_SOURCE_SECRETS: expected hosts as host or host:port"),
])
def test_a_bad_secret_list_fails_the_run_naming_the_variable(servers, settings, monkeypatch, value, says):
    api, _attacker = servers
    monkeypatch.setenv("DLT_SOURCE_SECRETS", value)
    with pytest.raises(SettingsError) as refused:
        run_load(definition(api.url, [{"name": "issues", "endpoint": {"path": "issues"}}], auth=BEARER), settings)
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)
    assert not any(secret in str(refused.value) for secret in SECRETS.values()) and api.log == []
