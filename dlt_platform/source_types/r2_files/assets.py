"""An r2_files source in Dagster: one multi-asset (dagster-dlt) with an asset per table, so one run loads them
together and a subset can be selected.

    r2/<bucket>  ->  r2/<bucket>/<prefix...>  ->  <dataset>/<table>  (one per table)
    (the bucket)     (the folder a table reads)    (warehouse tables: the dlt assets)

A table reading the bucket's root depends on the bucket's node itself.
"""

import dagster as dg

from dlt_platform.orchestration.assets import SOURCE_SYSTEM_GROUP, SourceTables, build_tables_asset
from dlt_platform.settings import Settings
from dlt_platform.source_types.base import asset_name
from dlt_platform.source_types.r2_files import R2_FILES
from dlt_platform.source_types.r2_files.definition import (
    LogpushTable,
    R2FilesSourceDefinition,
    table_name,
)
from dlt_platform.source_types.r2_files.source import r2_files_source, table_disposition

_GLOB_CHARACTERS = set("*?[{")


def table_prefix(table) -> str:
    """The folder a table reads: a Logpush job's prefix, or a glob's leading segments without wildcards."""
    if isinstance(table, LogpushTable):
        return table.prefix or ""
    segments = table.file_glob.split("/")[:-1]
    fixed = []
    for segment in segments:
        if _GLOB_CHARACTERS & set(segment):
            break
        fixed.append(segment)
    return "/".join(fixed)


def prefix_key(definition: R2FilesSourceDefinition, table) -> dg.AssetKey:
    """What a table's asset depends on: its folder's node, or the bucket's for a table at the root."""
    system = R2_FILES.source_system_key(definition)
    prefix = table_prefix(table)
    if not prefix:
        return system
    return dg.AssetKey([*system.path, *[asset_name(part) for part in prefix.split("/")]])


def lineage_specs(definition: R2FilesSourceDefinition) -> list[dg.AssetSpec]:
    bucket = definition.extract.bucket
    system = R2_FILES.source_system_key(definition)
    specs = {
        system: dg.AssetSpec(
            system,
            group_name=SOURCE_SYSTEM_GROUP,
            kinds={R2_FILES.system_kind},
            description=f"R2 bucket {bucket}",
            metadata={"bucket": bucket},
        )
    }
    for table in definition.extract.tables:
        key = prefix_key(definition, table)
        if key not in specs:
            prefix = table_prefix(table)
            specs[key] = dg.AssetSpec(
                key,
                deps=[system],
                group_name=SOURCE_SYSTEM_GROUP,
                kinds={R2_FILES.system_kind},
                description=f"Objects under {prefix}/ in R2 bucket {bucket}",
                metadata={"bucket": bucket, "prefix": prefix},
            )
    return list(specs.values())


def table_metadata(definition: R2FilesSourceDefinition, name: str) -> dict:
    table = next(table for table in definition.extract.tables if table_name(table) == name)
    metadata = {
        "source_id": definition.source_id,
        "source_type": definition.source_type,
        "enabled": definition.enabled,
        "bucket": definition.extract.bucket,
        "file_glob": table.file_glob,
        "format": (
            f"logpush ({table.dataset}, {table.timestamp_format} timestamps)"
            if isinstance(table, LogpushTable)
            else table.format
        ),
        "write_disposition": definition.disposition(table),
        "incremental_cursor": "modification_date" if definition.disposition(table) != "replace" else "none",
        "schedule": definition.schedule or "manual",
        "dagster/table_name": f"{definition.destination.dataset}.{name}",
    }
    if table.primary_key is not None:
        key = table.primary_key
        metadata["primary_key"] = key if isinstance(key, str) else ", ".join(key)
    if definition.tags:
        metadata["definition_tags"] = dg.MetadataValue.json(definition.tags)
    return metadata


def build_r2_files_asset(
    definition: R2FilesSourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    """The multi-asset of one r2_files source, an asset per table, each downstream of its folder's node; its op is
    named after the source (the Worker's run config addresses ops.<source_id>). The source handed to dagster-dlt
    only describes the tables: building it lists no files and reads no credentials."""
    by_name = {table_name(table): table for table in definition.extract.tables}
    tables = SourceTables(
        noun="table",
        upstream=lambda name: prefix_key(definition, by_name[name]),
        metadata=lambda name: table_metadata(definition, name),
        disposition=lambda name, request: table_disposition(definition, by_name[name], request),
    )
    source = r2_files_source(definition, settings, describe_only=True)
    return build_tables_asset(definition, settings, source, tables, version)
