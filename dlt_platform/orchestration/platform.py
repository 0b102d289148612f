"""Assemble the code location from source definitions: assets, lineage, checks, jobs, schedules, sensors."""

import warnings

import dagster as dg
from dagster_dlt import DagsterDltResource

from dlt_platform.config import SourceDefinition
from dlt_platform.orchestration.assets import build_source_asset, lineage_specs, table_key
from dlt_platform.orchestration.checks import build_table_checks, freshness_checks
from dlt_platform.orchestration.run_mirror import build_run_mirror_sensor
from dlt_platform.orchestration.schedules import build_source_job, build_source_schedule
from dlt_platform.settings import Settings

FRESHNESS_SENSOR = "freshness_checks_sensor"


def build_platform_definitions(definitions: list[SourceDefinition], settings: Settings) -> dg.Definitions:
    assets, checks, jobs, schedules = [], [], [], []
    for definition in definitions:
        assets.append(build_source_asset(definition, settings))
        checks.extend(build_table_checks(definition, settings))
        job = build_source_job(definition)
        jobs.append(job)
        schedule = build_source_schedule(definition, job)
        if schedule is not None:
            schedules.append(schedule)
    freshness = freshness_checks(definitions)
    sensors = []
    if freshness:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.SupersessionWarning)
            sensors.append(dg.build_sensor_for_freshness_checks(
                freshness_checks=freshness, name=FRESHNESS_SENSOR, default_status=dg.DefaultSensorStatus.RUNNING))
    if settings.orchestrator_url:
        source_by_key = {table_key(definition): definition.source_id for definition in definitions}
        sensors.append(build_run_mirror_sensor(settings, source_by_key))
    return dg.Definitions(
        assets=[*lineage_specs(definitions), *assets],
        asset_checks=[*checks, *freshness],
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={"dlt": DagsterDltResource()},
        # A run loads one source and then checks it, step after step: a process per step would only re-import
        # dlt and rebuild every source's asset again for each check.
        executor=dg.in_process_executor,
    )
