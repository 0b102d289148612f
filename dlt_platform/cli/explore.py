"""Explore KV before loading: namespaces, the configured sources, keys, the rows records would become, a profile.

Every KV command reads through the REST API with Cloudflare credentials, else through the local stack's Worker
when it is up (app.kv_settings); nothing here writes anything.
"""

from __future__ import annotations

import json
import tomllib
from typing import Annotated

import typer

from dlt_platform.cli.app import (
    EXPLORE,
    JsonOption,
    SourceOption,
    app,
    kv_settings,
    kv_source,
    one_line_errors,
    settings,
)
from dlt_platform.cli.output import console, print_json, print_listing, say
from dlt_platform.config import SourceDefinition
from dlt_platform.load_request import LoadRequest
from dlt_platform.profiling import profile_records
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform.source_types import source_type_of
from dlt_platform.source_types.cloudflare_kv.definition import KVSourceDefinition
from dlt_platform.source_types.cloudflare_kv.rest_client import CloudflareKVClient


def _first_records(source_id: str, limit: int, command: str) -> tuple[KVSourceDefinition, list[dict]]:
    """The source's definition and its first `limit` records, as a load would read them."""
    from dlt_platform.source_types.cloudflare_kv.source import read_pages

    config = settings()
    definition = kv_source(config, source_id, command)
    records: list[dict] = []
    for page in read_pages(definition, kv_settings(config, definition), LoadRequest(limit=limit)):
        records.extend(page[: limit - len(records)])
        if len(records) >= limit:
            break
    return definition, records


def _local_namespaces() -> list[dict]:
    """The local Worker's namespaces are its KV bindings, named by binding as the Worker's KV page API is."""
    wrangler = tomllib.loads((PROJECT_ROOT / "wrangler.toml").read_text(encoding="utf-8"))
    return [{"id": binding["id"], "title": binding["binding"]} for binding in wrangler.get("kv_namespaces", [])]


@app.command(rich_help_panel=EXPLORE)
def namespaces(as_json: JsonOption = False) -> None:
    """List the account's KV namespaces (Cloudflare REST API), or the Worker's KV bindings when KV is read
    through the Worker."""
    with one_line_errors():
        config = settings()
        if kv_settings(config).kv_transport_override == "worker":
            found = _local_namespaces()
        else:
            with CloudflareKVClient(
                config.cloudflare_api_base_url, config.cloudflare_account_id, config.cloudflare_api_token
            ) as client:
                found = [{"id": namespace["id"], "title": namespace["title"]} for namespace in client.list_namespaces()]
        print_listing(["id", "title"], found, as_json)


def _tables_of(definition: SourceDefinition) -> str:
    names = source_type_of(definition).table_names(definition)
    return names[0] if len(names) == 1 else "{" + ",".join(names) + "}"


def list_configured_sources(as_json: bool = False) -> None:
    """List the configured sources (`dlt-platform sources`, `sources list`: cli/sources.py)."""
    with one_line_errors():
        config = settings()
        definitions = config.load_sources()
        rows = [
            {
                "source_id": definition.source_id,
                "type": definition.source_type,
                "enabled": definition.enabled,
                "schedule": definition.schedule,
                "destination": f"{config.destination_type(definition)}:{definition.destination.dataset}."
                f"{_tables_of(definition)}",
                "disposition": definition.destination.write_disposition,
                **source_type_of(definition).describe(definition, config),
            }
            for definition in definitions
        ]
        print_listing(
            list(rows[0]) if rows else ["source_id"],
            rows,
            as_json,
            document=[definition.model_dump(mode="json") for definition in definitions],
        )


@app.command(rich_help_panel=EXPLORE)
def keys(
    source_id: SourceOption,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    prefix: Annotated[str | None, typer.Option(help="Override the definition's prefix.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List keys of a source's namespace, one a line."""
    from dlt_platform.source_types.cloudflare_kv.source import open_transport

    with one_line_errors():
        config = settings()
        definition = kv_source(config, source_id, "keys")
        transport = open_transport(definition, kv_settings(config, definition))
        listed: list[dict] = []
        try:
            for page in transport.pages(prefix if prefix is not None else definition.extract.prefix):
                for record in page[: limit - len(listed)]:
                    listed.append(
                        {"key": record["key"], "metadata": record["metadata"], "expiration": record["expiration"]}
                    )
                    if not as_json:
                        say(record["key"])
                if len(listed) >= limit:
                    break
        finally:
            transport.close()
        if as_json:
            print_json(listed)


@app.command(rich_help_panel=EXPLORE)
def sample(
    source_id: SourceOption, limit: Annotated[int, typer.Option(min=1)] = 20, as_json: JsonOption = False
) -> None:
    """Print the warehouse rows the first records would become (nothing is loaded)."""
    from dlt_platform.source_types.cloudflare_kv.rows import warehouse_row

    with one_line_errors():
        definition, records = _first_records(source_id, limit, "sample")
        extract = definition.extract
        rows = [warehouse_row(record, extract.namespace_id, extract.namespace_title) for record in records]
        if as_json:
            print_json(rows)
            return
        for row in rows:
            console.print_json(json.dumps(row, default=str))


@app.command(rich_help_panel=EXPLORE)
def profile(
    source_id: SourceOption, limit: Annotated[int, typer.Option(min=1)] = 100, as_json: JsonOption = False
) -> None:
    """Per field of the sampled values: presence, types seen, an example; and the share of non-JSON values."""
    with one_line_errors():
        result = profile_records(_first_records(source_id, limit, "profile")[1])
        fields = sorted(result.fields.values(), key=lambda f: (-f.present, f.name))
        summary = {
            "records": result.records,
            "non_json": result.non_json,
            "binary": result.binary,
            "non_object_json": result.non_object_json,
        }
        if as_json:
            print_json(
                {
                    **summary,
                    "fields": [
                        {
                            "field": entry.name,
                            "present": entry.present,
                            "types": dict(entry.types),
                            "example": entry.example,
                        }
                        for entry in fields
                    ],
                }
            )
            return
        rows = []
        for entry in fields:
            example = json.dumps(entry.example, default=str)
            rows.append(
                {
                    "field": entry.name,
                    "present": f"{entry.present}/{result.records} ({entry.present / result.records:.0%})",
                    "types": ", ".join(f"{name} {count}" for name, count in entry.types.most_common()),
                    "example": example[:60] + ("..." if len(example) > 60 else ""),
                }
            )
        print_listing(
            ["field", "present", "types", "example"], rows, title=f"{source_id}: {result.records} records sampled"
        )
        say(
            f"non-JSON values: {result.non_json}/{result.records} ({result.non_json_share:.1%}); "
            f"binary: {result.binary}; JSON but not an object: {result.non_object_json}"
        )
