"""HTTP APIs as a dlt source: a rest_api definition's `extract` handed to `dlt.sources.rest_api`.

The definition already is dlt's RESTAPIConfig (secrets as {"env": NAME}); this module checks, before any
request, that its secrets are listed for sources and bound to its host (credentials.py) and that its hosts are
not the platform's own network (hosts.py), resolves the secrets, gives dlt's client the platform's session
(dlt's retries, a per-host request budget and the run's RequestGuard, session.py), and adds to every resource its
paginator wrapped to tell which page an item came from (rows.PageStamps) and a map step (audit columns, raw
snapshot). Pagination, auth, parent/child resources and incremental cursors are dlt's own.

Child resources are fetched concurrently: dlt's `parallelized` resources, one parent item's requests at a time in
each of dlt's extract workers (settings.apply_dlt_defaults sets how many), every request still taking its turn in
the host's budget (session.py).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import cast

import dlt
from dlt.sources import DltResource, DltSource
from dlt.sources.helpers.rest_client.detector import single_entity_path
from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources
from dlt.sources.rest_api.config_setup import create_paginator

from dlt_platform.definition_base import WriteDisposition
from dlt_platform.load_request import LoadRequest, reads_part_of_source
from dlt_platform.settings import Settings, private_host_allowance, source_secret_hosts
from dlt_platform.source_types.rest_api.child_cursors import ParentCursors, child_cursor_plans, per_parent_config
from dlt_platform.source_types.rest_api.credentials import source_credentials
from dlt_platform.source_types.rest_api.definition import (
    OAuth2ClientCredentialsAuth,
    RestApiSourceDefinition,
    RestResource,
    loaded_resources,
    parent_references,
)
from dlt_platform.source_types.rest_api.hosts import HostPolicy
from dlt_platform.source_types.rest_api.rows import AUDIT_COLUMN_HINTS, PAGE_FIELD, PageStamps, with_audit_columns
from dlt_platform.source_types.rest_api.secrets import resolved
from dlt_platform.source_types.rest_api.session import RequestGuard, budgeted_session
from dlt_platform.source_types.rest_api.snapshot import RunSnapshot, replayed_items


def resource_disposition(
    definition: RestApiSourceDefinition, resource: RestResource, request: LoadRequest
) -> WriteDisposition:
    """How a run writes a resource's table. As for KV (load_request.write_disposition_for), a run that reads part
    of the source (a limit, a partial run's snapshot replayed) never replaces: it merges on the primary key."""
    from dlt_platform.source_types.rest_api import REST_API

    configured = definition.extract.effective(resource, "write_disposition") or definition.destination.write_disposition
    if configured == "replace" and REST_API.reads_part_of_source(definition, request):
        if definition.extract.effective(resource, "primary_key") is None:
            field = "limit" if request.limit is not None else "from_snapshot" if request.from_snapshot else "partition"
            raise ValueError(
                f"{field}: resource '{resource.name}' replaces its table and has no primary_key, so "
                "a partial run could neither replace nor merge it; run the whole source"
            )
        return "merge"
    return configured


def checked_rest_request(definition: RestApiSourceDefinition, request: LoadRequest) -> None:
    if request.keys:
        raise ValueError("keys: a rest_api source reads endpoints, not keys")
    if request.window is not None and definition.extract.partitions is None:
        raise ValueError("partition: this rest_api source has no partitions (extract.partitions is not set)")
    for resource in loaded_resources(definition):
        resource_disposition(definition, resource, request)


def secret_query_params(definition: RestApiSourceDefinition) -> set[str]:
    auth = definition.extract.client.auth
    if auth is not None and auth.type == "api_key" and auth.location in ("query", "param"):
        return {auth.name}
    return set()


def windowed(incremental: dict, window: tuple[dt.datetime, dt.datetime]) -> dict:
    """dlt's incremental bounded by a partition's window: with an end_value dlt reads the range and leaves the
    cursor it keeps for normal runs alone. Epoch seconds when the cursor is a number, else ISO 8601 UTC."""
    start, end = window
    as_number = isinstance(incremental.get("initial_value"), int)

    def value(moment: dt.datetime):
        return int(moment.timestamp()) if as_number else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    return {**incremental, "initial_value": value(start), "end_value": value(end)}


def paginator_config(config: dict, resource: dict):
    """The paginator dlt would use for a resource of a RESTAPIConfig: its endpoint's, else resource_defaults',
    else a single page for a single-entity path (dlt's guess), else the client's; None: dlt detects it."""
    defaults = (config.get("resource_defaults") or {}).get("endpoint") or {}
    paginator = resource["endpoint"].get("paginator") or defaults.get("paginator")
    if paginator is None and single_entity_path(resource["endpoint"]["path"]):
        return SinglePagePaginator()
    return paginator or config["client"].get("paginator")


def dlt_config(
    definition: RestApiSourceDefinition,
    session,
    secret_params: set[str],
    environ: Mapping[str, str] | None = None,
    child_cursors: Mapping[str, tuple[str, ParentCursors]] | None = None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> RESTAPIConfig:
    """dlt's RESTAPIConfig of a definition: secrets resolved, the platform's session and page stamps added, child
    resources fetched concurrently (dlt's `parallelized`), their incrementals turned into per-parent cursors
    (child_cursors.py), and for a partition run the incrementals bounded by its window."""
    dumped = definition.extract.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"http", "partitions"}
    )  # the platform's, not dlt's
    config = resolved(dumped, "extract", os.environ if environ is None else environ)
    if not isinstance(config, dict):  # an extract is an object, never a lone {"env": NAME}
        raise TypeError("extract: expected an object")
    config["client"]["session"] = session
    if config["client"].get("auth", {}).get("type") == "oauth2_client_credentials":
        config["client"]["auth"]["session"] = session  # the token request goes through the guard too
    for index, resource in enumerate(config["resources"]):
        name = resource["name"]
        if window is not None and "incremental" in resource["endpoint"] and name not in (child_cursors or {}):
            resource["endpoint"]["incremental"] = windowed(resource["endpoint"]["incremental"], window)
        if child_cursors and name in child_cursors:
            resource = config["resources"][index] = per_parent_config(resource, *child_cursors[name])
        resource["endpoint"]["paginator"] = PageStamps(
            create_paginator(paginator_config(config, resource)), secret_params
        )
        if parent_references(definition.extract.resources[index]):
            resource["parallelized"] = True
    # The extract is dlt's RESTAPIConfig in its JSON-expressible form (definition.py), now with the hooks added.
    return cast(RESTAPIConfig, config)


def _first_items(limit: int):
    seen = 0

    def keep(_item) -> bool:
        nonlocal seen
        seen += 1
        return seen <= limit

    return keep


def request_guard(
    definition: RestApiSourceDefinition, settings: Settings, environ: Mapping[str, str] | None = None
) -> RequestGuard:
    """The run's RequestGuard, once its secrets and hosts passed the checks a run makes before any request:
    every secret listed for sources and bound to the hosts it goes to, base_url (and an OAuth2 token URL) not
    on the platform's network. Raises SecretNotAllowed or HostNotAllowed, one line naming the field."""
    environ = os.environ if environ is None else environ
    credentials = source_credentials(definition, source_secret_hosts(environ))
    hosts = HostPolicy(private_host_allowance(environ), settings.orchestrator_url)
    client = definition.extract.client
    hosts.check(client.base_url, "extract.client.base_url")
    if isinstance(client.auth, OAuth2ClientCredentialsAuth):
        hosts.check(client.auth.access_token_url, "extract.client.auth.access_token_url")
    return RequestGuard(
        hosts, credentials, {credential.secret: environ.get(credential.secret, "") for credential in credentials}
    )


def _fetched_rows(
    definition: RestApiSourceDefinition,
    settings: Settings,
    request: LoadRequest,
    snapshot: RunSnapshot | None,
    environ: Mapping[str, str] | None = None,
) -> list[DltResource]:
    # Only a source that runs sends requests; one built to describe the asset graph checks nothing.
    guard = request_guard(definition, settings) if environ is None else None
    session = budgeted_session(definition.extract.http, secret_query_params(definition), guard)
    child_cursors = child_cursor_plans(definition)
    config = dlt_config(definition, session, secret_query_params(definition), environ, child_cursors, request.window)
    resources = {resource.name: resource for resource in rest_api_resources(config)}

    def to_row(name: str):
        def row(item: dict) -> dict:
            page = item.pop(PAGE_FIELD)  # PageStamps marked every item of the page
            if snapshot is not None:
                snapshot.write(name, page.url, page.fetched_at, item)
            return with_audit_columns(item, page.url, page.fetched_at)

        return row

    built = []
    for resource in definition.extract.resources:
        dlt_resource = resources[resource.name]
        if resource.name in child_cursors:
            cursors = child_cursors[resource.name][1]
            dlt_resource.add_map(cursors.with_parent_cursor, insert_at=0)  # sees each parent item first
            dlt_resource.add_map(cursors.record)
        if resource.selected:
            if request.limit is not None and not dlt_resource.is_transformer:
                # dlt stops asking for pages once `limit` items came; the filter drops the rest of the last page.
                dlt_resource.add_limit(request.limit, count_rows=True)
                dlt_resource.add_filter(_first_items(request.limit))
            dlt_resource.add_map(to_row(resource.name))
            dlt_resource.apply_hints(
                write_disposition=resource_disposition(definition, resource, request), columns=AUDIT_COLUMN_HINTS
            )
        built.append(dlt_resource)
    return built


def _replayed_rows(
    definition: RestApiSourceDefinition, settings: Settings, request: LoadRequest, snapshot_key: str
) -> list[DltResource]:
    def rows(name: str):
        for page in replayed_items(snapshot_key, name, settings):
            yield [with_audit_columns(line["item"], line["url"], line["fetched_at"]) for line in page]

    extract = definition.extract
    return [
        dlt.resource(
            rows(resource.name),
            name=resource.name,
            columns=AUDIT_COLUMN_HINTS,
            primary_key=extract.effective(resource, "primary_key"),
            write_disposition=resource_disposition(definition, resource, request),
            max_table_nesting=extract.effective(resource, "max_table_nesting"),
        )
        for resource in loaded_resources(definition)
    ]


def run_snapshot(source: DltSource) -> RunSnapshot | None:
    """The raw snapshot a source built here writes (to publish or discard once its run ends)."""
    return getattr(source, "platform_snapshot", None)


class _UnresolvedSecrets(dict):
    """Stands in for the environment when a source is only described (Dagster's asset graph): every secret
    resolves to a placeholder, so a missing variable fails the run that needs it, not the code location."""

    def get(self, key, default=None):
        return "<resolved when a run starts>"


def rest_api_source(
    definition: RestApiSourceDefinition,
    settings: Settings,
    request: LoadRequest = LoadRequest(),
    describe_only: bool = False,
) -> DltSource:
    """The dlt source of a rest_api definition for one request (checked by the caller, loads.build_source).
    Secrets are read from the environment here, before any request; `describe_only` reads none (nothing runs)."""
    checked_rest_request(definition, request)
    keeps_snapshot = definition.staging.raw_snapshot and not request.from_snapshot
    prefix = definition.staging.r2_prefix  # set whenever raw_snapshot is (Staging's rule)
    complete = not reads_part_of_source(definition, request)
    snapshot = RunSnapshot(settings, prefix, complete) if keeps_snapshot and prefix is not None else None
    if request.from_snapshot:
        resources = _replayed_rows(definition, settings, request, request.from_snapshot)
    else:
        resources = _fetched_rows(
            definition, settings, request, snapshot, environ=_UnresolvedSecrets() if describe_only else None
        )

    @dlt.source(name=definition.source_id, root_key=True)
    def platform_rest_api():
        return resources

    source = platform_rest_api()
    source.platform_snapshot = snapshot
    return source
