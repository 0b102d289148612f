"""A d1 source in Dagster: one multi-asset (dagster-dlt) with an asset per table or named query, so one run loads
them together and a subset can be selected (dlt then reads only the selected tables).

    d1/<database_name>  ->  <dataset>/<table>  (one per table or query)
    (the database, external)  (warehouse tables: the dlt assets)

As for rest_api sources, the source handed to `dlt_assets` only describes the assets (nothing is read from D1
when the code location loads); each run builds a fresh one for its request. (No `from __future__ import
annotations`: Dagster reads the op's config class from its annotation.)
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
    failed_run,
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
from dlt_platform.source_types.d1 import D1_DATABASE
from dlt_platform.source_types.d1.client import D1Error
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


class D1Translator(DagsterDltTranslator):
    """Names and describes each table of a d1 source: key [dataset, table]."""

    def __init__(self, definition: D1SourceDefinition, destination_type: str, version: int | None = None) -> None:
        self.definition, self.destination_type, self.version = definition, destination_type, version

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        definition, name = self.definition, data.resource.name
        return dg.AssetSpec(
            key=dg.AssetKey([definition.destination.dataset, name]),
            deps=[D1_DATABASE.upstream_key(definition)],
            group_name=definition.destination.dataset,
            description=definition.description or f"d1 source {definition.source_id}: table {name}",
            kinds={"dlt", self.destination_type, D1_DATABASE.system_kind},
            metadata={
                **table_metadata(definition, name),
                "dagster/storage_kind": self.destination_type,
                **({SOURCE_VERSION_METADATA: dg.MetadataValue.int(self.version)} if self.version else {}),
            },
            owners=owners_of(definition),
            tags=dagster_tags(definition),
        )


def load_d1_source(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    config: SourceRunConfig,
    definition: D1SourceDefinition,
    settings: Settings,
):
    """Run the source's dlt pipeline for this run's request (the selected tables) and record what loaded."""
    try:
        request = checked_request(definition, settings, load_request_for(context, config))
        source = build_source(definition, settings, request)  # reads each table's columns from D1
    except ValueError as error:  # bad run config: the failure says which field, without a traceback
        raise dg.Failure(description=str(error), allow_retries=False) from None
    except D1Error as error:  # a missing table or column, a refused token: one line
        raise dg.Failure(description=str(error), allow_retries=False) from None
    check_before_load(definition, settings)
    pipeline = build_pipeline(definition, settings)
    with warehouse_turn(definition, settings, say=context.log.info):
        set_aside: list[str] = []
        finish_pending_loads(pipeline, say=context.log.warning, on_set_aside=set_aside.append)
        try:
            results = run_within_contract(context, dlt, definition, source, pipeline, request)
        except Exception as error:
            reported = failed_run(error, definition, source)
            if reported is error:
                raise
            raise dg.Failure(description=str(reported), allow_retries=False) from None
    rows = loaded_row_counts(pipeline)
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    load_id = load_info.loads_ids[-1] if load_info and load_info.loads_ids else ""
    items = {warehouse_name(item): item for item in loaded_tables(definition)}
    discarded = rows_discarded(pipeline) if has_contract(definition) else {}
    for result in results:
        table = result.asset_key.path[-1]
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
                "write_disposition": table_disposition(definition, items[table], request),
                **({ROWS_DISCARDED: dg.MetadataValue.int(discarded.get(table, 0))} if has_contract(definition) else {}),
                **({SET_ASIDE_METADATA: "; ".join(set_aside)} if set_aside else {}),
            },
        )


def build_d1_asset(
    definition: D1SourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    """The multi-asset of one d1 source; its op is named after the source (the Worker's run config addresses
    ops.<source_id>)."""
    return source_dlt_assets(
        definition,
        settings,
        d1_source(definition, settings, describe_only=True),
        D1Translator(definition, settings.destination_type(definition), version),
        load_d1_source,
    )
