"""The Dagster assets of a source definition, over dagster-dlt, whatever its type: the translator, the run config,
the load a run does, and the raw-snapshot lineage node. Each source type adds its own upstream nodes and metadata
(source_types/<type>/assets.py); the registry answers which tables, partitions and nodes a definition has.

    <source system>  ->  raw_staging/<r2_prefix...>  ->  <dataset>/<table>
    (external)           (raw snapshot, when kept)       (warehouse table: the dlt asset)

The dlt source handed to `dlt_assets` only describes the asset; every run builds a fresh source from its run
config and partition window, because dagster-dlt passes neither to the source by itself.
"""

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from pydantic import Field

from dlt_platform.config import SourceDefinition
from dlt_platform.contract import (  # noqa: F401 (re-exported)
    RUN_ID_TAG,
    SOURCE_ID_TAG,
    SOURCE_VERSION_METADATA,
    TRIGGER_TAG,
)
from dlt_platform.definition_base import OneTableSource
from dlt_platform.failed_packages import SET_ASIDE_METADATA
from dlt_platform.load_request import (
    LoadRequest,
    checked_request,
    write_disposition_for,
)
from dlt_platform.loads import (
    LOAD_JOBS_METADATA,
    after_load,
    build_source,
    failed_load_id,
    failed_run,
    finish_pending_loads,
    load_jobs_by_table,
    loaded_row_counts,
    pipeline_ready_to_load,
    published_snapshot,
    refused_by_contract,
    rows_discarded,
    run_kwargs,
    warehouse_turn,
)
from dlt_platform.orchestration.run_start import report_running
from dlt_platform.orchestration.schema_contracts import (
    ROWS_DISCARDED,
    has_contract,
    report_violation,
)
from dlt_platform.settings import Settings
from dlt_platform.source_types import source_type_of
from dlt_platform.source_types.base import SourceError

SOURCE_SYSTEM_GROUP = "source_systems"
RAW_STAGING_GROUP = "raw_staging"

# Dagster's rules for definition tags; definition tags that break them stay visible as metadata instead.
_TAG_KEY = re.compile(r"^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$")
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SourceRunConfig(dg.Config):
    """What one run may ask for (the Worker's run request, the launchpad, the CLI's flags). Checked by
    load_request.checked_request when the run starts; a partial run never replaces the table."""

    limit: int | None = Field(None, description="Stop after this many records (a partial run: it never replaces).")
    keys: list[str] | None = Field(None, description="Load these keys only (a partial run: it never replaces).")
    full_refresh: bool = Field(False, description="Empty the table and load the whole source (not with limit/keys).")
    from_snapshot: str | None = Field(
        None,
        description="Replay a raw snapshot of this source: its object key, <r2_prefix>/YYYY-MM-DD/<load_id>.ndjson.gz "
        "(.complete.ndjson.gz: a run of the whole source, replayed as that run loaded).",
    )


def table_key(definition: OneTableSource) -> dg.AssetKey:
    return dg.AssetKey([definition.destination.dataset, definition.destination.table])


def table_keys(definition: SourceDefinition) -> list[dg.AssetKey]:
    """The [dataset, table] asset of every table a source loads (its child tables `x__y` go with their parent)."""
    return [
        dg.AssetKey([definition.destination.dataset, name])
        for name in source_type_of(definition).table_names(definition)
    ]


def raw_snapshot_key(definition: SourceDefinition) -> dg.AssetKey | None:
    if not definition.staging.raw_snapshot or not definition.staging.r2_prefix:
        return None
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", part) for part in definition.staging.r2_prefix.split("/") if part]
    return dg.AssetKey([RAW_STAGING_GROUP, *parts])


def raw_snapshot_spec(definition: SourceDefinition, system: dg.AssetKey) -> dg.AssetSpec | None:
    """The node of the raw snapshots a source keeps of what it read (downstream of the system it reads)."""
    raw = raw_snapshot_key(definition)
    if raw is None:
        return None
    return dg.AssetSpec(
        raw,
        deps=[system],
        group_name=RAW_STAGING_GROUP,
        description=f"Compressed NDJSON of every extraction of {definition.source_id} (R2 bucket or the local "
        "raw_staging folder), replayable with from_snapshot.",
        kinds={"r2", "ndjson"},
        metadata={"r2_prefix": definition.staging.r2_prefix},
    )


def pool_name(definition: SourceDefinition) -> str:
    # One pool per source with the instance's default pool limit of 1: two runs of one dlt pipeline never
    # overlap, however they were launched (UI runs carry no source tag, so tag limits alone cannot ensure it).
    return f"dlt_source_{definition.source_id}"


def dagster_tags(definition: SourceDefinition) -> dict[str, str]:
    """The definition's tags that Dagster accepts as asset tags (the others stay visible as metadata)."""
    return {key: value for key, value in definition.tags.items() if _TAG_KEY.match(key) and _TAG_VALUE.match(value)}


def owners_of(definition: SourceDefinition) -> list[str]:
    """Dagster owners are emails or `team:` names; a bare name in the definition is read as a team."""
    return [
        owner if _EMAIL.match(owner) or owner.startswith("team:") else f"team:{owner}" for owner in definition.owners
    ]


def base_metadata(definition: OneTableSource) -> dict:
    """Asset metadata every source type shows: identity, schedule, table and its BigQuery options, tags."""
    metadata: dict = {
        "source_id": definition.source_id,
        "source_type": definition.source_type,
        "enabled": definition.enabled,
        "write_disposition": definition.destination.write_disposition,
        "schedule": definition.schedule or "manual",
        "dagster/table_name": f"{definition.destination.dataset}.{definition.destination.table}",
    }
    destination = definition.destination
    if destination.location:
        metadata["bigquery_location"] = destination.location
    if destination.partition_by is not None:
        metadata["bigquery_partition_by"] = (
            f"{destination.partition_by.column} ({destination.partition_by.granularity})"
        )
    if destination.cluster_by:
        metadata["bigquery_cluster_by"] = ", ".join(destination.cluster_by)
    if definition.tags:
        metadata["definition_tags"] = dg.MetadataValue.json(definition.tags)
    return metadata


class PlatformTranslator(DagsterDltTranslator):
    """Names and describes the dlt resource of a source with one table; its type gives the metadata."""

    def __init__(self, definition: OneTableSource, destination_type: str, version: int | None, metadata: dict) -> None:
        self.definition, self.destination_type, self.version = definition, destination_type, version
        self.upstream = source_type_of(definition).upstream_key(definition)
        self.metadata = metadata

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        definition = self.definition
        return dg.AssetSpec(
            key=table_key(definition),
            deps=[self.upstream],
            group_name=definition.destination.dataset,
            description=definition.description or f"{definition.source_type} source {definition.source_id}",
            kinds={"dlt", self.destination_type, source_type_of(definition).system_kind},
            metadata={
                **self.metadata,
                "dagster/storage_kind": self.destination_type,
                # The Worker launches a run once Dagster shows the version the run was requested against.
                **({SOURCE_VERSION_METADATA: dg.MetadataValue.int(self.version)} if self.version else {}),
            },
            owners=owners_of(definition),
            tags=dagster_tags(definition),
        )


def partition_window(context: dg.AssetExecutionContext) -> tuple[dt.datetime, dt.datetime] | None:
    """The time window of the run's partition or partition range (a single-run backfill spans many)."""
    if context.assets_def.partitions_def is None or not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window
    return window.start, window.end


def load_request_for(context: dg.AssetExecutionContext, config: SourceRunConfig) -> LoadRequest:
    return LoadRequest(
        limit=config.limit,
        keys=tuple(config.keys) if config.keys is not None else None,
        full_refresh=config.full_refresh,
        from_snapshot=config.from_snapshot,
        window=partition_window(context),
    )


def load_source(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    config: SourceRunConfig,
    definition: OneTableSource,
    settings: Settings,
):
    """Run the source's dlt pipeline for this run's request and record what it loaded."""
    try:
        request = checked_request(definition, settings, load_request_for(context, config))
    except ValueError as error:  # bad run config: the failure says which field, without a traceback
        raise dg.Failure(description=str(error), allow_retries=False) from None
    if request.window is not None:
        context.log.info(f"Loading the partition window [{request.window[0]}, {request.window[1]})")
    pipeline = pipeline_ready_to_load(definition, settings)
    with warehouse_turn(definition, settings, say=context.log.info):
        yield from _load_in_turn(context, dlt, definition, settings, request, pipeline)


def _load_in_turn(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    definition: OneTableSource,
    settings: Settings,
    request: LoadRequest,
    pipeline,
):
    set_aside: list[str] = []
    pending = finish_pending_loads(pipeline, say=context.log.warning, on_set_aside=set_aside.append)
    source = build_source(definition, settings, request)
    # Not .fetch_row_count(): it fails a run that loaded 0 rows; rows come from dlt's normalize counts instead.
    results = run_within_contract(context, dlt, definition, source, pipeline, request, pending)
    for result in results:
        rows = loaded_row_counts(pipeline)
        load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
        load_id = load_info.loads_ids[-1] if load_info and load_info.loads_ids else ""
        # The load succeeded (dagster-dlt yields only after pipeline.run returned): what follows a load, e.g.
        # webhook deliveries marked loaded, happens before the materialization is recorded.
        loaded_packages = [*pending, *(load_info.loads_ids if load_info else [])]
        metadata = {
            **(result.metadata or {}),
            **after_load(definition, settings, pipeline, loaded_packages, context.run.run_id),
            "rows_loaded": dg.MetadataValue.int(sum(rows.values())),
            "rows_by_table": dg.MetadataValue.json(rows),
            "load_id": load_id,
            "destination_table": f"{definition.destination.dataset}.{definition.destination.table}",
            "destination": settings.destination_type(definition),
            "write_disposition": write_disposition_for(definition, request),  # a partial run merges
        }
        if set_aside:  # the run mirror puts it in the run's message in D1, with an alert
            metadata[SET_ASIDE_METADATA] = "; ".join(set_aside)
        if has_contract(definition):
            metadata[ROWS_DISCARDED] = dg.MetadataValue.int(sum(rows_discarded(pipeline).values()))
        if request.window is not None:
            metadata["window_start"] = request.window[0].isoformat()
            metadata["window_end"] = request.window[1].isoformat()
        yield dg.MaterializeResult(asset_key=result.asset_key, metadata=metadata)
        raw = raw_snapshot_key(definition)
        snapshot = (
            source_type_of(definition).published_snapshot(pipeline, definition, None, load_id)
            if raw is not None and rows
            else None
        )
        if snapshot and raw is not None:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=raw,
                    metadata={"snapshot_url": snapshot, "load_id": load_id, "source_id": definition.source_id},
                )
            )


@dataclass(frozen=True)
class SourceTables:
    """What a source with several tables (rest_api resources, d1 tables, r2_files tables: one asset each, in one
    multi-asset) tells Dagster about each of them, by the table's warehouse name."""

    noun: str  # what one of them is called in descriptions: "resource", "table"
    upstream: Callable[[str], dg.AssetKey]  # the node the table reads from
    metadata: Callable[[str], dict]
    disposition: Callable[[str, LoadRequest], str]  # this run's write disposition of the table (a partial run merges)


class TablesTranslator(DagsterDltTranslator):
    """Names and describes each table of a source with several: key [dataset, table]."""

    def __init__(self, definition: SourceDefinition, destination_type: str, version: int | None, tables: SourceTables):
        self.definition, self.destination_type, self.version, self.tables = (
            definition,
            destination_type,
            version,
            tables,
        )

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        definition, name = self.definition, data.resource.name
        return dg.AssetSpec(
            key=dg.AssetKey([definition.destination.dataset, name]),
            deps=[self.tables.upstream(name)],
            group_name=definition.destination.dataset,
            description=definition.description
            or f"{definition.source_type} source {definition.source_id}: {self.tables.noun} {name}",
            kinds={"dlt", self.destination_type, source_type_of(definition).system_kind},
            metadata={
                **self.tables.metadata(name),
                "dagster/storage_kind": self.destination_type,
                **({SOURCE_VERSION_METADATA: dg.MetadataValue.int(self.version)} if self.version else {}),
            },
            owners=owners_of(definition),
            tags=dagster_tags(definition),
        )


def load_tables(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    config: SourceRunConfig,
    definition: SourceDefinition,
    settings: Settings,
    tables: SourceTables,
):
    """Run the source's dlt pipeline for this run's request (the selected tables) and record what each loaded."""
    try:
        request = checked_request(definition, settings, load_request_for(context, config))
        source = build_source(definition, settings, request)  # secrets, a D1 table's columns: read here
    except (ValueError, SourceError) as error:  # bad run config, a missing secret or table: one line
        raise dg.Failure(description=str(error), allow_retries=False) from None
    if request.window is not None:
        context.log.info(f"Loading the incremental tables from {request.window[0]} to {request.window[1]}")
    pipeline = pipeline_ready_to_load(definition, settings)
    with warehouse_turn(definition, settings, say=context.log.info):
        set_aside: list[str] = []
        pending = finish_pending_loads(pipeline, say=context.log.warning, on_set_aside=set_aside.append)
        try:
            results = run_within_contract(context, dlt, definition, source, pipeline, request, pending)
        except Exception as error:  # the run's snapshot is discarded; a failure the type explains is one line
            reported = failed_run(error, definition, source)
            if reported is error:
                raise
            raise dg.Failure(description=str(reported), allow_retries=False) from None
    rows = loaded_row_counts(pipeline)
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    load_id = load_info.loads_ids[-1] if load_info and load_info.loads_ids else ""
    raw = raw_snapshot_key(definition)
    snapshot = published_snapshot(pipeline, definition, source, load_id) if definition.staging.raw_snapshot else None
    discarded = rows_discarded(pipeline) if has_contract(definition) else {}
    for result in results:
        table = result.asset_key.path[-1]
        # Each asset reports its own table and its child tables, so the run's total counts every row once.
        own = {name: count for name, count in rows.items() if name == table or name.startswith(f"{table}__")}
        metadata = {
            **(result.metadata or {}),
            "rows_loaded": dg.MetadataValue.int(sum(own.values())),
            "rows_by_table": dg.MetadataValue.json(own),
            "load_id": load_id,
            "destination_table": f"{definition.destination.dataset}.{table}",
            "destination": settings.destination_type(definition),
            "write_disposition": tables.disposition(table, request),
        }
        if request.window is not None:
            metadata["window_start"] = request.window[0].isoformat()
            metadata["window_end"] = request.window[1].isoformat()
        if has_contract(definition):
            metadata[ROWS_DISCARDED] = dg.MetadataValue.int(discarded.get(table, 0))
        if set_aside:  # the run mirror puts it in the run's message in D1, with an alert
            metadata[SET_ASIDE_METADATA] = "; ".join(set_aside)
        yield dg.MaterializeResult(asset_key=result.asset_key, metadata=metadata)
    if raw is not None and snapshot:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=raw,
                metadata={"snapshot_url": snapshot, "load_id": load_id, "source_id": definition.source_id},
            )
        )


def build_tables_asset(
    definition: SourceDefinition, settings: Settings, dlt_source, tables: SourceTables, version: int | None = None
) -> dg.AssetsDefinition:
    """The multi-asset of a source with several tables; `dlt_source` only describes them (building it reads
    nothing), each run builds its own for its request."""
    translator = TablesTranslator(definition, settings.destination_type(definition), version, tables)
    return source_dlt_assets(
        definition, settings, dlt_source, translator, functools.partial(load_tables, tables=tables)
    )


def record_load_jobs(
    context: dg.AssetExecutionContext,
    definition: SourceDefinition,
    pipeline,
    load_ids: list[str],
    failed_load: str | None = None,
):
    """Logs the load jobs the run sent per table (an observation of one of its tables); the run mirror reports them
    with the run's final status, succeeded or failed (worker/src/load_jobs.ts: BigQuery's load-job quota)."""
    tables = load_jobs_by_table(pipeline, load_ids, failed_load)
    if not tables:
        return
    report = {
        "destination": pipeline.destination.destination_type.rsplit(".", 1)[-1],
        "dataset": definition.destination.dataset,
        "budget": definition.destination.daily_load_job_budget,
        "tables": tables,
    }
    key = min(context.selected_asset_keys, key=lambda selected: selected.to_user_string())
    context.log_event(dg.AssetObservation(asset_key=key, metadata={LOAD_JOBS_METADATA: dg.MetadataValue.json(report)}))


def run_within_contract(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    definition: SourceDefinition,
    source,
    pipeline,
    request: LoadRequest,
    pending: list[str] | None = None,
) -> list:
    """dagster-dlt's run of the source; a load the schema contract refuses fails the run in one line (and the
    table's contract check), with nothing loaded. The load jobs it sent (and those of `pending`, packages an
    earlier run left and this one loaded first) are recorded either way."""
    try:
        results = list(dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline, **run_kwargs(request)))
    except Exception as error:
        record_load_jobs(context, definition, pipeline, pending or [], failed_load_id(error))
        violation = refused_by_contract(error, pipeline)
        if violation is None:
            raise
        report_violation(context, definition, table_keys(definition), violation.table, str(violation))
        raise dg.Failure(description=str(violation), allow_retries=False) from None
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    record_load_jobs(context, definition, pipeline, [*(pending or []), *(load_info.loads_ids if load_info else [])])
    return results


def build_source_asset(
    definition: OneTableSource, settings: Settings, translator: PlatformTranslator
) -> dg.AssetsDefinition:
    """The warehouse-table asset of a source with one table; its op is named after the source (the Worker's run
    config addresses ops.<source_id>).

    No dlt pipeline is built here: every run builds its own (load_source) and hands it to dagster-dlt, and the
    translator names the destination itself. Building one per source resolved its destination's configuration
    for every source on every load of the code location, in the webserver, the daemon and each run worker alike
    (about half the time of loading 100 sources)."""

    return source_dlt_assets(definition, settings, build_source(definition, settings), translator, load_source)


def source_dlt_assets(
    definition: SourceDefinition, settings: Settings, dlt_source, translator: DagsterDltTranslator, load
) -> dg.AssetsDefinition:
    """The dlt_assets of one source, whatever its type: `translator` names its tables, `load` runs its dlt
    pipeline in a run (load_source for one table, load_tables for several)."""

    @dlt_assets(
        dlt_source=dlt_source,
        # dagster-dlt's translator data takes Optional[Pipeline] (its signature here does not say so); runs pass
        # their own.
        dlt_pipeline=None,  # type: ignore[arg-type]
        name=definition.source_id,
        dagster_dlt_translator=translator,
        partitions_def=source_type_of(definition).partitions(definition),
        pool=pool_name(definition),
    )
    def source_asset(context: dg.AssetExecutionContext, dlt: DagsterDltResource, config: SourceRunConfig):
        report_running(context, settings)  # the ledger shows `running` now, not at the run mirror's next tick
        yield from load(context, dlt, config, definition, settings)

    return source_asset
