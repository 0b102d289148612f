"""A rest_api source in Dagster: one multi-asset (dagster-dlt) with an asset per loaded resource table, so one
run loads them together and a subset can be selected (dlt then reads the selected resources, and the parents
their endpoints need, without loading the parents).

    rest_api/<host>  ->  raw_staging/<r2_prefix...>  ->  <dataset>/<resource>  (one per resource)
    (the API, external)  (raw snapshot, when kept)        (warehouse tables: the dlt assets)

As for KV sources (assets.py), the source handed to `dlt_assets` only describes the assets; each run builds a
fresh one for its request, with secrets read from the environment then.
"""

from urllib.parse import urlsplit

import dagster as dg

from dlt_platform.orchestration.assets import SOURCE_SYSTEM_GROUP, SourceTables, build_tables_asset, raw_snapshot_spec
from dlt_platform.settings import Settings
from dlt_platform.source_types.rest_api import REST_API
from dlt_platform.source_types.rest_api.definition import RestApiSourceDefinition
from dlt_platform.source_types.rest_api.source import resource_disposition, rest_api_source


def lineage_specs(definition: RestApiSourceDefinition) -> list[dg.AssetSpec]:
    host = urlsplit(definition.extract.client.base_url).netloc
    system = REST_API.source_system_key(definition)
    specs = [
        dg.AssetSpec(
            system,
            group_name=SOURCE_SYSTEM_GROUP,
            kinds={REST_API.system_kind},
            description=f"HTTP API at {host}",
            metadata={"host": host},
        )
    ]
    raw = raw_snapshot_spec(definition, system)
    return specs if raw is None else [*specs, raw]


def resource_metadata(definition: RestApiSourceDefinition, name: str) -> dict:
    extract = definition.extract
    resource = next(r for r in extract.resources if r.name == name)
    paginator = resource.endpoint.paginator or extract.client.paginator
    metadata = {
        "source_id": definition.source_id,
        "source_type": definition.source_type,
        "enabled": definition.enabled,
        "base_url": extract.client.base_url,
        "endpoint_path": resource.endpoint.path,
        "paginator": paginator.type if paginator is not None else "auto",
        "auth": extract.client.auth.type if extract.client.auth is not None else "none",
        "write_disposition": extract.effective(resource, "write_disposition")
        or definition.destination.write_disposition,
        "schedule": definition.schedule or "manual",
        "snapshot_prefix": definition.staging.r2_prefix if definition.staging.raw_snapshot else "none",
        "dagster/table_name": f"{definition.destination.dataset}.{name}",
    }
    primary_key = extract.effective(resource, "primary_key")
    if primary_key is not None:
        metadata["primary_key"] = primary_key if isinstance(primary_key, str) else ", ".join(primary_key)
    if resource.endpoint.incremental is not None:
        metadata["incremental_cursor"] = resource.endpoint.incremental.cursor_path
    if definition.tags:
        metadata["definition_tags"] = dg.MetadataValue.json(definition.tags)
    return metadata


def build_rest_api_asset(
    definition: RestApiSourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    """The multi-asset of one rest_api source, an asset per resource; its op is named after the source (the
    Worker's run config addresses ops.<source_id>)."""
    resources = {resource.name: resource for resource in definition.extract.resources}
    tables = SourceTables(
        noun="resource",
        upstream=lambda _name: REST_API.upstream_key(definition),
        metadata=lambda name: resource_metadata(definition, name),
        disposition=lambda name, request: resource_disposition(definition, resources[name], request),
    )
    source = rest_api_source(definition, settings, describe_only=True)
    return build_tables_asset(definition, settings, source, tables, version)
