"""The Dagster definitions of one source type's sources (SourceType.build_defs): per source its assets, table
checks, job, schedule and sensors. A source whose parts cannot be built is returned with why, and the others are
built all the same."""

from __future__ import annotations

import dagster as dg

from dlt_platform.orchestration.checks import build_table_checks
from dlt_platform.orchestration.schedules import build_source_job, build_source_schedule
from dlt_platform.settings import Settings


def build_source_defs(
    source_type, definitions: list, settings: Settings, versions: dict[str, int]
) -> tuple[dg.Definitions, list[tuple[object, str]]]:
    assets, checks, jobs, schedules, sensors, failed = [], [], [], [], [], []
    for definition in definitions:
        try:
            asset = source_type.build_asset(definition, settings, versions.get(definition.source_id))
            table_checks = build_table_checks(definition, settings)
            job = build_source_job(definition)
            schedule = build_source_schedule(definition, job)
            source_sensors = source_type.sensors(definition, job, settings)
        except Exception as error:  # noqa: BLE001 - any failure of one source must leave the others loadable
            failed.append((definition, f"{type(error).__name__}: {error}"))
            continue
        assets.append(asset)
        checks.extend(table_checks)
        jobs.append(job)
        schedules.extend([schedule] if schedule is not None else [])
        sensors.extend(source_sensors)
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=jobs, schedules=schedules, sensors=sensors), failed
