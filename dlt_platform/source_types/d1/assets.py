"""A d1 source in Dagster: one multi-asset (dagster-dlt) with an asset per table or named query, so one run loads
them together and a subset can be selected (dlt then reads only the selected tables).

    d1/<database_name>  ->  <dataset>/<table>  (one per table or query)
    (the database, external)  (warehouse tables: the dlt assets)

As for rest_api sources, the source handed to `dlt_assets` only describes the assets (nothing is read from D1
when the code location loads); each run builds a fresh one for its request.
"""

import dagster as dg

from dlt_platform.orchestration.assets import SOURCE_SYSTEM_GROUP, SourceTables, build_tables_asset
from dlt_platform.settings import Settings
from dlt_platform.source_types.d1 import D1_DATABASE
from dlt_platform.source_types.d1.definition import D1Query, D1SourceDefinition, loaded_tables, warehouse_name
from dlt_platform.source_types.d1.source import d1_source, table_disposition


def lineage_specs(definition: D1SourceDefinition) -> list[dg.AssetSpec]:
    extract = definition.extract
    return [
        dg.AssetSpec(
            D1_DATABASE.source_system_key(definition),
            group_name=SOURCE_SYSTEM_GROUP,
            kinds={D1_DATABASE.system_kind, "sqlite"},
            description=f"Cloudflare D1 database {extract.database_name}",
            metadata={"database_id": extract.database_id, "database_name": extract.database_name},
        )
    ]


def table_metadata(definition: D1SourceDefinition, name: str) -> dict:
    item = next(item for item in loaded_tables(definition) if warehouse_name(item) == name)
    destination = definition.destination
    metadata = {
        "source_id": definition.source_id,
        "source_type": definition.source_type,
        "enabled": definition.enabled,
        "schedule": definition.schedule or "manual",
        "database_name": definition.extract.database_name,
        "transport": definition.extract.transport,
        "write_disposition": item.write_disposition or destination.write_disposition,
        "dagster/table_name": f"{destination.dataset}.{name}",
        "primary_key": ", ".join(item.primary_key) if item.primary_key else "declared in D1 (else rowid)",
    }
    if isinstance(item, D1Query):
        metadata["d1_query"] = item.sql
    else:
        metadata["d1_table"] = item.name
    if destination.location:
        metadata["bigquery_location"] = destination.location
    if definition.tags:
        metadata["definition_tags"] = dg.MetadataValue.json(definition.tags)
    if item.cursor is not None:
        metadata["incremental_cursor"] = item.cursor
    return metadata


def build_d1_asset(
    definition: D1SourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    """The multi-asset of one d1 source, an asset per table or named query; its op is named after the source
    (the Worker's run config addresses ops.<source_id>)."""
    items = {warehouse_name(item): item for item in loaded_tables(definition)}
    tables = SourceTables(
        noun="table",
        upstream=lambda _name: D1_DATABASE.upstream_key(definition),
        metadata=lambda name: table_metadata(definition, name),
        disposition=lambda name, request: table_disposition(definition, items[name], request),
    )
    return build_tables_asset(
        definition, settings, d1_source(definition, settings, describe_only=True), tables, version
    )
