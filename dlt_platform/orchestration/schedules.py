"""A job and a schedule per source: the definition's cron in UTC, running by default only for enabled sources.

Incremental sources are partitioned by key-prefix window; their schedule asks for one run over the partition
range of the lookback (the window in progress and the `lookback - 1` before it), so the partitions Dagster
marks materialized are exactly the windows that run read.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from dlt_platform.config import SourceDefinition
from dlt_platform.contract import SOURCE_ID_TAG
from dlt_platform.orchestration.assets import table_keys
from dlt_platform.source_types import source_type_of
from dlt_platform.source_types.base import WINDOW_STEPS, window_start

PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def job_name(definition: SourceDefinition) -> str:
    return f"load_{definition.source_id}"


def schedule_name(definition: SourceDefinition) -> str:
    return f"{definition.source_id}_schedule"


def build_source_job(definition: SourceDefinition):
    """The source's asset job, unresolved as `define_asset_job` returns it (Definitions resolve it)."""
    return dg.define_asset_job(
        job_name(definition),
        selection=dg.AssetSelection.assets(*table_keys(definition)),
        # Lets the queued run coordinator hold a second run of the same source (see dagster.yaml).
        tags={SOURCE_ID_TAG: definition.source_id},
        description=f"Load source {definition.source_id} into "
        f"{', '.join('.'.join(key.path) for key in table_keys(definition))}",
    )


def lookback_partition_range(definition: SourceDefinition, now: dt.datetime) -> tuple[str, str] | None:
    """First and last partition key of the lookback windows at `now`; None before the first window exists."""
    source_type = source_type_of(definition)
    incremental = source_type.time_windows(definition)
    partitions = source_type.partitions(definition)
    assert incremental is not None and partitions is not None
    step = WINDOW_STEPS[incremental.step]
    current = window_start(now, incremental.step)
    first_window = dt.datetime.combine(incremental.start, dt.time(), tzinfo=dt.UTC)
    if current < first_window:
        return None
    earliest = max(current - step * (incremental.lookback - 1), first_window)
    return (
        partitions.get_partition_key_for_timestamp(earliest.timestamp()),
        partitions.get_partition_key_for_timestamp(current.timestamp()),
    )


def build_source_schedule(definition: SourceDefinition, job) -> dg.ScheduleDefinition | None:
    if definition.schedule is None:
        return None
    default_status = dg.DefaultScheduleStatus.RUNNING if definition.enabled else dg.DefaultScheduleStatus.STOPPED
    description = f"{definition.source_id}: {definition.schedule} (UTC)"
    # A source without time windows (a webhook's scheduled run loads what waits) runs unpartitioned; sources with
    # windows ask for the range of their lookback.
    windows = source_type_of(definition).time_windows(definition)
    if windows is None:
        return dg.ScheduleDefinition(
            name=schedule_name(definition),
            cron_schedule=definition.schedule,
            job=job,
            execution_timezone="UTC",
            default_status=default_status,
            description=description,
        )

    @dg.schedule(
        name=schedule_name(definition),
        cron_schedule=definition.schedule,
        job=job,
        execution_timezone="UTC",
        default_status=default_status,
        description=description,
    )
    def lookback_schedule(context: dg.ScheduleEvaluationContext):
        now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        keys = lookback_partition_range(definition, now)
        if keys is None:
            return dg.SkipReason(f"No window before {windows.start}")
        return dg.RunRequest(tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[1]})

    return lookback_schedule
