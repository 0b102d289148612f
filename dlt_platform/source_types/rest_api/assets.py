"""A rest_api source in Dagster: one multi-asset (dagster-dlt) with an asset per loaded resource table, so one
run loads them together and a subset can be selected (dlt then reads the selected resources, and the parents
their endpoints need, without loading the parents).

    rest_api/<host>  ->  raw_staging/<r2_prefix...>  ->  <dataset>/<resource>  (one per resource)
    (the API, external)  (raw snapshot, when kept)        (warehouse tables: the dlt assets)

As for KV sources (assets.py), the source handed to `dlt_assets` only describes the assets; each run builds a
fresh one for its request, with secrets read from the environment then. (No `from __future__ import
annotations`: Dagster reads the op's config class from its annotation.)
"""

from urllib.parse import urlsplit

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
    published_snapshot,
    rows_discarded,
    warehouse_turn,
)
from dlt_platform.orchestration.assets import (
    SOURCE_SYSTEM_GROUP,
    SourceRunConfig,
    dagster_tags,
    load_request_for,
    owners_of,
    raw_snapshot_key,
    raw_snapshot_spec,
    run_within_contract,
    source_dlt_assets,
)
from dlt_platform.orchestration.schema_contracts import ROWS_DISCARDED, has_contract
from dlt_platform.settings import Settings
from dlt_platform.source_types.rest_api import REST_API
from dlt_platform.source_types.rest_api.definition import RestApiSourceDefinition
from dlt_platform.source_types.rest_api.errors import RestApiError
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


class RestApiTranslator(DagsterDltTranslator):
    """Names and describes each resource of a rest_api source: key [dataset, resource]."""

    def __init__(self, definition: RestApiSourceDefinition, destination_type: str, version: int | None = None) -> None:
        self.definition, self.destination_type, self.version = definition, destination_type, version

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        definition, name = self.definition, data.resource.name
        return dg.AssetSpec(
            key=dg.AssetKey([definition.destination.dataset, name]),
            deps=[REST_API.upstream_key(definition)],
            group_name=definition.destination.dataset,
            description=definition.description or f"rest_api source {definition.source_id}: resource {name}",
            kinds={"dlt", self.destination_type, REST_API.system_kind},
            metadata={
                **resource_metadata(definition, name),
                "dagster/storage_kind": self.destination_type,
                **({SOURCE_VERSION_METADATA: dg.MetadataValue.int(self.version)} if self.version else {}),
            },
            owners=owners_of(definition),
            tags=dagster_tags(definition),
        )


def load_rest_api_source(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    config: SourceRunConfig,
    definition: RestApiSourceDefinition,
    settings: Settings,
):
    """Run the source's dlt pipeline for this run's request (the selected resources) and record what loaded."""
    try:
        request = checked_request(definition, settings, load_request_for(context, config))
        source = build_source(definition, settings, request)  # secrets are read here: a missing one fails now
    except ValueError as error:  # bad run config: the failure says which field, without a traceback
        raise dg.Failure(description=str(error), allow_retries=False) from None
    except RestApiError as error:  # a secret's environment variable is not set
        raise dg.Failure(description=str(error), allow_retries=False) from None
    if request.window is not None:
        context.log.info(f"Loading the incremental resources from {request.window[0]} to {request.window[1]}")
    check_before_load(definition, settings)
    pipeline = build_pipeline(definition, settings)
    with warehouse_turn(definition, settings, say=context.log.info):
        set_aside: list[str] = []
        finish_pending_loads(pipeline, say=context.log.warning, on_set_aside=set_aside.append)
        try:
            results = run_within_contract(context, dlt, definition, source, pipeline, request)
        except Exception as error:  # the run's snapshot is discarded; a failure of the API's is one line
            reported = failed_run(error, definition, source)
            if reported is error:
                raise
            raise dg.Failure(description=str(reported), allow_retries=False) from None
    rows = loaded_row_counts(pipeline)
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    load_id = load_info.loads_ids[-1] if load_info and load_info.loads_ids else ""
    snapshot = published_snapshot(pipeline, definition, source, load_id) if definition.staging.raw_snapshot else None
    resources = {r.name: r for r in definition.extract.resources}
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
                "write_disposition": resource_disposition(definition, resources[table], request),
                **(
                    {"window_start": request.window[0].isoformat(), "window_end": request.window[1].isoformat()}
                    if request.window is not None
                    else {}
                ),
                **({ROWS_DISCARDED: dg.MetadataValue.int(discarded.get(table, 0))} if has_contract(definition) else {}),
                **({SET_ASIDE_METADATA: "; ".join(set_aside)} if set_aside else {}),
            },
        )
    raw = raw_snapshot_key(definition)
    if raw is not None and snapshot:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=raw,
                metadata={"snapshot_url": snapshot, "load_id": load_id, "source_id": definition.source_id},
            )
        )


def build_rest_api_asset(
    definition: RestApiSourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    """The multi-asset of one rest_api source; its op is named after the source (the Worker's run config
    addresses ops.<source_id>)."""

    return source_dlt_assets(
        definition,
        settings,
        rest_api_source(definition, settings, describe_only=True),
        RestApiTranslator(definition, settings.destination_type(definition), version),
        load_rest_api_source,
    )
