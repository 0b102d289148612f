"""Assemble the code location from source definitions: assets, lineage, checks, jobs, schedules, sensors.

A source that cannot be built (its definition is invalid, its table is another source's, building raised) is
left out and shown instead as an asset in the `invalid_definitions` group whose description says why, so one
bad definition never keeps the others from loading.
"""

from __future__ import annotations

import re
import warnings

import dagster as dg
from dagster_dlt import DagsterDltResource

from dlt_platform.config import DefinitionProblem, SourceDefinition
from dlt_platform.orchestration.assets import (
    build_source_asset,
    lineage_specs,
    raw_snapshot_key,
    source_system_key,
    table_keys,
)
from dlt_platform.orchestration.checks import build_table_checks, freshness_checks, schema_change_checks
from dlt_platform.orchestration.rest_api_assets import build_rest_api_asset
from dlt_platform.orchestration.run_mirror import build_run_mirror_sensor
from dlt_platform.orchestration.schedules import build_source_job, build_source_schedule
from dlt_platform.orchestration import webhook_assets
from dlt_platform.settings import Settings

FRESHNESS_SENSOR = "freshness_checks_sensor"
INVALID_GROUP = "invalid_definitions"


def _table_clash(definition: SourceDefinition, owners: dict[dg.AssetKey, str],
                 lineage: set[dg.AssetKey]) -> str | None:
    for key in table_keys(definition):
        if key in owners:
            return f"table {'.'.join(key.path)} is already loaded by source {owners[key]}"
        if key in lineage:
            return f"table {'.'.join(key.path)} has the key of a source system or raw snapshot node"
        if key.path[0] == INVALID_GROUP:
            return f"dataset {INVALID_GROUP} is where Dagster shows definitions it cannot load"
    return None


def problem_specs(problems: list[DefinitionProblem], versions: dict[str, int]) -> list[dg.AssetSpec]:
    """One visible placeholder per definition Dagster could not load."""
    specs: dict[dg.AssetKey, dg.AssetSpec] = {}
    for problem in problems:
        name = re.sub(r"[^A-Za-z0-9_]", "_", problem.source_id or f"entry_{problem.index}")[:100] or "unnamed"
        key = dg.AssetKey([INVALID_GROUP, name])
        while key in specs:
            key = dg.AssetKey([INVALID_GROUP, f"{key.path[-1]}_"])
        metadata = {"source_id": problem.source_id or "", "load_error": dg.MetadataValue.md(problem.message)}
        if problem.source_id in versions:
            metadata["source_version"] = versions[problem.source_id]
        specs[key] = dg.AssetSpec(
            key, group_name=INVALID_GROUP, kinds={"error"}, metadata=metadata,
            description=f"Not loaded: the definition of {problem.source_id or f'entry {problem.index}'} cannot be "
                        f"built. {problem.message}")
    return list(specs.values())


# The asset factory of each source type: one table asset (KV, webhooks) or one multi-asset (rest_api).
ASSET_BUILDERS = {
    "cloudflare_kv": build_source_asset,
    "rest_api": build_rest_api_asset,
    "webhook": webhook_assets.build_webhook_asset,
}


def lineage_of(definitions: list[SourceDefinition]) -> tuple[set[dg.AssetKey], list[dg.AssetSpec]]:
    """The keys and specs of the nodes upstream of the tables: the source system and raw snapshot of the sources
    the platform reads (KV, rest_api), the feed and raw deliveries of webhook sources."""
    read = [d for d in definitions if d.source_type != "webhook"]
    webhooks = [d for d in definitions if d.source_type == "webhook"]
    keys = ({source_system_key(d) for d in read} | {k for d in read if (k := raw_snapshot_key(d))}
            | {k for d in webhooks for k in webhook_assets.lineage_keys(d)})
    return keys, [*lineage_specs(read), *webhook_assets.lineage_specs(webhooks)]


def build_code_location(definitions: list[SourceDefinition], settings: Settings,
                        problems: list[DefinitionProblem] | None = None,
                        versions: dict[str, int] | None = None) -> tuple[dg.Definitions, list[DefinitionProblem]]:
    """The code location of every buildable definition, and every definition that was not (with why)."""
    problems, versions = list(problems or []), versions or {}
    lineage, _ = lineage_of(definitions)
    owners: dict[dg.AssetKey, str] = {}
    built: list[SourceDefinition] = []
    assets, checks, jobs, schedules, sensors = [], [], [], [], []
    for index, definition in enumerate(definitions):
        try:
            clash = _table_clash(definition, owners, lineage)
            if clash:
                raise ValueError(clash)
            webhook = definition.source_type == "webhook"
            asset = ASSET_BUILDERS[definition.source_type](definition, settings, versions.get(definition.source_id))
            table_checks = build_table_checks(definition, settings)
            job = build_source_job(definition)
            schedule = build_source_schedule(definition, job)
            # Webhook deliveries start runs as they arrive, unless the definition asks for a schedule.
            sensor = webhook_assets.build_delivery_sensor(definition, job, settings) if webhook and not schedule else None
        except Exception as error:  # noqa: BLE001 - any failure of one source must leave the others loadable
            problems.append(DefinitionProblem(index, definition.source_id, f"{type(error).__name__}: {error}"))
            continue
        owners.update({key: definition.source_id for key in table_keys(definition)})
        built.append(definition)
        assets.append(asset)
        checks.extend(table_checks)
        jobs.append(job)
        if schedule is not None:
            schedules.append(schedule)
        if sensor is not None:
            sensors.append(sensor)
    freshness = freshness_checks(built)
    if freshness:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.SupersessionWarning)
            sensors.append(dg.build_sensor_for_freshness_checks(
                freshness_checks=freshness, name=FRESHNESS_SENSOR, default_status=dg.DefaultSensorStatus.RUNNING))
    if settings.orchestrator_url:
        source_by_key = {key: definition.source_id for definition in built for key in table_keys(definition)}
        sensors.append(build_run_mirror_sensor(settings, source_by_key))
    location = dg.Definitions(
        assets=[*lineage_of(built)[1], *assets, *problem_specs(problems, versions)],
        asset_checks=[*checks, *schema_change_checks(built), *freshness],
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={"dlt": DagsterDltResource()},
        # A run loads one source and then checks it, step after step: a process per step would only re-import
        # dlt and rebuild every source's asset again for each check.
        executor=dg.in_process_executor,
    )
    return location, problems


def build_platform_definitions(definitions: list[SourceDefinition], settings: Settings) -> dg.Definitions:
    return build_code_location(definitions, settings)[0]
