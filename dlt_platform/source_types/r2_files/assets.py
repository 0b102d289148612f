"""An r2_files source in Dagster: one multi-asset (dagster-dlt) with an asset per table, so one run loads them
together and a subset can be selected.

    r2/<bucket>  ->  r2/<bucket>/<prefix...>  ->  <dataset>/<table>  (one per table)
    (the bucket)     (the folder a table reads)    (warehouse tables: the dlt assets)

A table reading the bucket's root depends on the bucket's node itself. (No `from __future__ import annotations`:
Dagster reads the op's config class from its annotation.)
"""

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from dlt_platform.contract import SOURCE_VERSION_METADATA
from dlt_platform.failed_packages import SET_ASIDE_METADATA
from dlt_platform.load_request import checked_request
from dlt_platform.loads import (
    build_pipeline,
    build_source,
    check_before_load,
    finish_pending_loads,
    loaded_row_counts,
    rows_discarded,
    warehouse_turn,
)
from dlt_platform.orchestration.assets import (
    SOURCE_SYSTEM_GROUP,
    SourceRunConfig,
    dagster_tags,
    load_request_for,
    owners_of,
    run_within_contract,
    source_dlt_assets,
)
from dlt_platform.orchestration.schema_contracts import ROWS_DISCARDED, has_contract
from dlt_platform.settings import Settings
from dlt_platform.source_types.base import asset_name
from dlt_platform.source_types.r2_files import R2_FILES
from dlt_platform.source_types.r2_files.definition import (
    LogpushTable,
    R2FilesSourceDefinition,
    table_name,
)
from dlt_platform.source_types.r2_files.source import (
    R2FilesError,
    r2_files_source,
    table_disposition,
)

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


class R2FilesTranslator(DagsterDltTranslator):
    """Names and describes each table of an r2_files source: key [dataset, table], upstream its folder's node."""

    def __init__(self, definition: R2FilesSourceDefinition, destination_type: str, version: int | None = None) -> None:
        self.definition, self.destination_type, self.version = definition, destination_type, version
        self.tables = {table_name(table): table for table in definition.extract.tables}

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        definition, name = self.definition, data.resource.name
        return dg.AssetSpec(
            key=dg.AssetKey([definition.destination.dataset, name]),
            deps=[prefix_key(definition, self.tables[name])],
            group_name=definition.destination.dataset,
            description=definition.description or f"r2_files source {definition.source_id}: table {name}",
            kinds={"dlt", self.destination_type, R2_FILES.system_kind},
            metadata={
                **table_metadata(definition, name),
                "dagster/storage_kind": self.destination_type,
                **({SOURCE_VERSION_METADATA: dg.MetadataValue.int(self.version)} if self.version else {}),
            },
            owners=owners_of(definition),
            tags=dagster_tags(definition),
        )


def load_r2_files_source(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    config: SourceRunConfig,
    definition: R2FilesSourceDefinition,
    settings: Settings,
):
    """Run the source's dlt pipeline for this run's request (the selected tables) and record what each loaded."""
    try:
        request = checked_request(definition, settings, load_request_for(context, config))
        source = build_source(definition, settings, request)
    except (ValueError, R2FilesError) as error:  # bad run config or credentials: one line, no traceback
        raise dg.Failure(description=str(error), allow_retries=False) from None
    check_before_load(definition, settings)
    pipeline = build_pipeline(definition, settings)
    with warehouse_turn(definition, settings, say=context.log.info):
        set_aside: list[str] = []
        finish_pending_loads(pipeline, say=context.log.warning, on_set_aside=set_aside.append)
        results = run_within_contract(context, dlt, definition, source, pipeline, request)
    rows = loaded_row_counts(pipeline)
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    load_id = load_info.loads_ids[-1] if load_info and load_info.loads_ids else ""
    tables = {table_name(table): table for table in definition.extract.tables}
    discarded = rows_discarded(pipeline) if has_contract(definition) else {}
    for result in results:
        table = result.asset_key.path[-1]
        # Each asset reports its own table and its child tables, so the run's total counts every row once.
        own = {name: count for name, count in rows.items() if name == table or name.startswith(f"{table}__")}
        yield dg.MaterializeResult(
            asset_key=result.asset_key,
            metadata={
                **(result.metadata or {}),
                "rows_loaded": dg.MetadataValue.int(sum(own.values())),
                "rows_by_table": dg.MetadataValue.json(own),
                "load_id": load_id,
                "destination_table": f"{definition.destination.dataset}.{table}",
                "destination": settings.destination_type(definition),
                "write_disposition": table_disposition(definition, tables[table], request),
                **({ROWS_DISCARDED: dg.MetadataValue.int(discarded.get(table, 0))} if has_contract(definition) else {}),
                **({SET_ASIDE_METADATA: "; ".join(set_aside)} if set_aside else {}),
            },
        )


def build_r2_files_asset(
    definition: R2FilesSourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    """The multi-asset of one r2_files source; its op is named after the source (the Worker's run config
    addresses ops.<source_id>). The source handed to dagster-dlt only describes the tables: building it lists no
    files and reads no credentials."""
    return source_dlt_assets(
        definition,
        settings,
        r2_files_source(definition, settings, describe_only=True),
        R2FilesTranslator(definition, settings.destination_type(definition), version),
        load_r2_files_source,
    )
