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
from dlt_platform.orchestration.assets import table_keys
from dlt_platform.orchestration.checks import freshness_checks, schema_change_checks
from dlt_platform.orchestration.run_mirror import build_run_mirror_sensor
from dlt_platform.settings import Settings
from dlt_platform.source_types import SOURCE_TYPES, source_type_of

FRESHNESS_SENSOR = "freshness_checks_sensor"
INVALID_GROUP = "invalid_definitions"


def _table_clash(definition: SourceDefinition, owners: dict[dg.AssetKey, str], lineage: set[dg.AssetKey]) -> str | None:
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
            key,
            group_name=INVALID_GROUP,
            kinds={"error"},
            metadata=metadata,
            description=f"Not loaded: the definition of {problem.source_id or f'entry {problem.index}'} cannot be "
            f"built. {problem.message}",
        )
    return list(specs.values())


def one_per_key(specs: list[dg.AssetSpec]) -> list[dg.AssetSpec]:
    """The lineage nodes upstream of the tables, one per key: sources reading one system share its node."""
    first: dict[dg.AssetKey, dg.AssetSpec] = {}
    for spec in specs:
        first.setdefault(spec.key, spec)
    return list(first.values())


def build_code_location(
    definitions: list[SourceDefinition],
    settings: Settings,
    problems: list[DefinitionProblem] | None = None,
    versions: dict[str, int] | None = None,
) -> tuple[dg.Definitions, list[DefinitionProblem]]:
    """The code location of every buildable definition, and every definition that was not (with why): the
    Definitions of each source type (SourceType.build_defs) merged with what spans all sources (lineage,
    freshness, the run mirror, the placeholders of definitions that could not be built)."""
    problems, versions = list(problems or []), versions or {}
    index_of = {id(definition): index for index, definition in enumerate(definitions)}
    lineage: dict[int, list[dg.AssetSpec]] = {}
    for index, definition in enumerate(definitions):
        try:
            lineage[id(definition)] = source_type_of(definition).lineage_specs(definition)
        except Exception as error:  # noqa: BLE001 - any failure of one source must leave the others loadable
            problems.append(DefinitionProblem(index, definition.source_id, f"{type(error).__name__}: {error}"))
    lineage_keys = {spec.key for specs in lineage.values() for spec in specs}
    owners: dict[dg.AssetKey, str] = {}
    accepted: list[SourceDefinition] = []
    for index, definition in enumerate(definitions):
        if id(definition) not in lineage:
            continue
        clash = _table_clash(definition, owners, lineage_keys)
        if clash:
            problems.append(DefinitionProblem(index, definition.source_id, f"ValueError: {clash}"))
            continue
        owners.update({key: definition.source_id for key in table_keys(definition)})
        accepted.append(definition)
    per_type, failed_ids = [], set()
    for source_type in SOURCE_TYPES.values():
        of_type = [definition for definition in accepted if source_type_of(definition) is source_type]
        if not of_type:
            continue
        type_defs, failed = source_type.build_defs(of_type, settings, versions)
        per_type.append(type_defs)
        for definition, message in failed:
            problems.append(DefinitionProblem(index_of[id(definition)], definition.source_id, message))
            failed_ids.add(id(definition))
    built = [definition for definition in accepted if id(definition) not in failed_ids]
    sensors = []
    freshness = freshness_checks(built)
    if freshness:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.SupersessionWarning)
            sensors.append(
                dg.build_sensor_for_freshness_checks(
                    freshness_checks=freshness, name=FRESHNESS_SENSOR, default_status=dg.DefaultSensorStatus.RUNNING
                )
            )
    if settings.orchestrator_url:
        source_by_key = {key: definition.source_id for definition in built for key in table_keys(definition)}
        sensors.append(build_run_mirror_sensor(settings, source_by_key))
    across_sources = dg.Definitions(
        assets=[*one_per_key([spec for d in built for spec in lineage[id(d)]]), *problem_specs(problems, versions)],
        asset_checks=[*schema_change_checks(built), *freshness],
        sensors=sensors,
        resources={"dlt": DagsterDltResource()},
        # A run loads one source and then checks it, step after step: a process per step would only re-import
        # dlt and rebuild every source's asset again for each check.
        executor=dg.in_process_executor,
    )
    return dg.Definitions.merge(*per_type, across_sources), problems


def build_platform_definitions(definitions: list[SourceDefinition], settings: Settings) -> dg.Definitions:
    return build_code_location(definitions, settings)[0]
