"""Webhook sources in Dagster: the table asset, its lineage, and what starts its runs.

    webhook/<source_id>  ->  raw_staging/<r2_prefix or webhooks>/<source_id>  ->  <dataset>/<table>
    (the sender, external)   (deliveries the Worker kept in R2, by hour)          (warehouse table: the dlt asset)

A run without a partition loads the deliveries waiting in the Worker; a run of an hour partition replays every
delivery received in that UTC hour (from the Dagster UI: select hours, Materialize). Both merge on the delivery
id, so replays are idempotent. A sensor per source requests a run once `batch.max_deliveries` deliveries wait or
the oldest has waited `batch.max_wait_seconds`; a source with a `schedule` runs on it instead.

Every run makes at least one BigQuery load job per table, and BigQuery allows 1,500 a table per UTC day: a run that
is due waits, when needed, until the source's remaining load-job budget (`destination.load_job_budget`) spread over
the rest of the day allows it (`load_job_wait`, figures from the Worker's count).
"""

from __future__ import annotations

import datetime as dt
import math
import re

import dagster as dg

from dlt_platform.contract import SOURCE_ID_TAG, TRIGGER_TAG, WEBHOOK_DEFAULT_R2_PREFIX
from dlt_platform.orchestration.assets import (
    RAW_STAGING_GROUP,
    SOURCE_SYSTEM_GROUP,
    PlatformTranslator,
    base_metadata,
    build_source_asset,
)
from dlt_platform.orchestration.worker_client import WorkerError, WorkerRejected
from dlt_platform.settings import Settings
from dlt_platform.source_types.webhook.definition import WebhookSourceDefinition
from dlt_platform.source_types.webhook.rows import parse_received_at
from dlt_platform.source_types.webhook.source import SetAsideHistory, open_worker_client

# One partition per UTC hour of received time, replayable from the UI; end_offset=1 includes the hour in progress.
DELIVERY_HOURS = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC", end_offset=1)
# How often a sensor asks the Worker what waits: well under the default max wait of 60 s, and one small request.
SENSOR_INTERVAL_SECONDS = 10
ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def raw_deliveries_key(definition: WebhookSourceDefinition) -> dg.AssetKey:
    prefix = definition.staging.r2_prefix or WEBHOOK_DEFAULT_R2_PREFIX
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", part) for part in prefix.split("/") if part]
    return dg.AssetKey([RAW_STAGING_GROUP, *parts, definition.source_id])


def lineage_specs(definition: WebhookSourceDefinition) -> list[dg.AssetSpec]:
    from dlt_platform.source_types.webhook import WEBHOOK

    preset = definition.extract.signature.preset
    system = WEBHOOK.source_system_key(definition)
    prefix = definition.staging.r2_prefix or WEBHOOK_DEFAULT_R2_PREFIX
    return [
        dg.AssetSpec(
            system,
            group_name=SOURCE_SYSTEM_GROUP,
            kinds={WEBHOOK.system_kind},
            description=f"Webhook sender posting to /hooks/{definition.source_id} ({preset} signatures).",
            metadata={"hook_path": f"/hooks/{definition.source_id}", "signature_preset": preset},
        ),
        dg.AssetSpec(
            raw_deliveries_key(definition),
            deps=[system],
            group_name=RAW_STAGING_GROUP,
            kinds={"r2", "json"},
            description=f"Verified deliveries of {definition.source_id} as the Worker kept them before answering: "
            f"one JSON document each under {prefix}/{definition.source_id}/dt=YYYY-MM-DD/hr=HH/.",
            metadata={"r2_prefix": f"{prefix}/{definition.source_id}"},
        ),
    ]


def webhook_metadata(definition: WebhookSourceDefinition) -> dict:
    extract = definition.extract
    return {
        **base_metadata(definition),
        "write_disposition": "merge",  # always, on the delivery id (see load_request.write_disposition_for)
        "merge_key": "webhook_delivery_id",
        "hook_path": f"/hooks/{definition.source_id}",
        "signature_preset": extract.signature.preset,
        "batch_max_deliveries": extract.batch.max_deliveries,
        "batch_max_wait_seconds": extract.batch.max_wait_seconds,
        "schedule": definition.schedule or f"sensor {sensor_name(definition)}",
        # The asset is the source's table; with a table per event type, bodies land next to it in
        # <table>__<event_type> tables (written by the same dlt resource, in the same run).
        "table_shape": (
            f"{definition.destination.table} (one row per delivery, raw body) + "
            f"{definition.destination.table}__<event_type>"
            if extract.event_type_tables()
            else f"{definition.destination.table} (one row per delivery, body expanded, raw body)"
        ),
        "max_table_nesting": "unbounded" if extract.nesting_limit() is None else extract.nesting_limit(),
    }


def build_webhook_asset(
    definition: WebhookSourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    translator = PlatformTranslator(
        definition, settings.destination_type(definition), version, metadata=webhook_metadata(definition)
    )
    return build_source_asset(definition, settings, translator)


def sensor_name(definition: WebhookSourceDefinition) -> str:
    return f"{definition.source_id}_deliveries"


def run_is_due(definition: WebhookSourceDefinition, waiting: dict | None, now: dt.datetime) -> str | None:
    """Why a run should start now (None: not yet). `waiting` is the source's entry of /internal/webhooks/waiting."""
    if not waiting or not waiting.get("waiting"):
        return None
    batch = definition.extract.batch
    if waiting["waiting"] >= batch.max_deliveries:
        return f"{waiting['waiting']} deliveries waiting (batch size {batch.max_deliveries})"
    oldest = waiting.get("oldest_received_at")
    if oldest and (now - parse_received_at(oldest)).total_seconds() >= batch.max_wait_seconds:
        return (
            f"{waiting['waiting']} deliveries waiting, the oldest since {oldest} (max wait {batch.max_wait_seconds} s)"
        )
    return None


def load_job_wait(definition: WebhookSourceDefinition, tables: list[dict], now: dt.datetime) -> str | None:
    """Why a due run waits for the load-job budget (None: it may start). `tables` are the Worker's figures of the
    tables the source loaded today (GET /internal/sources/:id/load-jobs). For each BigQuery table, the jobs left
    in the budget are spread evenly over the rest of the UTC day, at the jobs per run this source has made into it
    today: the next run may start one such interval after the last."""
    budget = definition.destination.daily_load_job_budget
    day_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    seconds_left = (day_end - now).total_seconds()
    waits: list[tuple[dt.datetime, str]] = []
    for table in tables:
        if table["destination"] != "bigquery" or not table["runs"]:
            continue
        name, jobs = f"{table['dataset']}.{table['table']}", table["jobs"]
        runs_left = (budget - jobs) // math.ceil(table["source_jobs"] / table["runs"])
        used = f"{name} has used {jobs} of its {budget} load jobs today"
        if runs_left < 1:
            waits.append((day_end, f"{used}: the next run waits for 00:00 UTC"))
            continue
        interval = seconds_left / runs_left
        next_run = parse_received_at(table["last_run_at"]) + dt.timedelta(seconds=interval)
        if next_run > now:
            waits.append(
                (
                    next_run,
                    f"{used}: the next run waits until {next_run:%H:%M:%S} UTC (one run every {interval:.0f} s "
                    f"keeps it within budget until 00:00 UTC)",
                )
            )
    return max(waits)[1] if waits else None


def build_delivery_sensor(definition: WebhookSourceDefinition, job, settings: Settings) -> dg.SensorDefinition:
    default_status = dg.DefaultSensorStatus.RUNNING if definition.enabled else dg.DefaultSensorStatus.STOPPED

    @dg.sensor(
        name=sensor_name(definition),
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=default_status,
        description=f"Runs {job.name} once {definition.extract.batch.max_deliveries} deliveries wait or the "
        f"oldest has waited {definition.extract.batch.max_wait_seconds} s.",
    )
    def deliveries_sensor(context: dg.SensorEvaluationContext):
        # One run at a time reads the waiting deliveries; the next tick after it ends sees what is left.
        active = context.instance.get_run_records(
            dg.RunsFilter(tags={SOURCE_ID_TAG: definition.source_id}, statuses=ACTIVE_RUN_STATUSES), limit=1
        )
        if active:
            return dg.SkipReason(f"run {active[0].dagster_run.run_id} of {definition.source_id} is still going")
        try:
            with open_worker_client(settings, timeout_seconds=10) as client:
                waiting = client.webhook_waiting().get(definition.source_id)
        except (WorkerError, ValueError) as error:
            return dg.SkipReason(f"cannot ask the Worker what waits: {error}")
        # Deliveries quarantined here (they failed on their own) still wait in the Worker, which has no failed
        # state: a run for them alone would read nothing, so none is started.
        history = SetAsideHistory.read(settings.data_dir, definition.source_id)
        quarantined = history.quarantined_count()
        if waiting and quarantined and waiting.get("waiting", 0) <= quarantined:
            return dg.SkipReason(
                f"{waiting['waiting']} deliveries waiting, none to load: they failed on their own "
                f"in load packages set aside in {history.folder}"
            )
        now = dt.datetime.now(dt.UTC)
        reason = run_is_due(definition, waiting, now)
        if reason is None:
            return dg.SkipReason(f"{(waiting or {}).get('waiting', 0)} deliveries waiting: not due yet")
        try:
            with open_worker_client(settings, timeout_seconds=10) as client:
                tables = client.source_load_jobs(definition.source_id)
        except WorkerRejected as error:  # a Worker without the count: the budget cannot be read, runs go on
            context.log.warning(f"cannot read the load-job count of {definition.source_id}: {error}")
            tables = []
        except (WorkerError, ValueError) as error:
            return dg.SkipReason(f"{reason}; cannot ask the Worker for the load-job count: {error}")
        wait = load_job_wait(definition, tables, now)
        if wait is not None:
            return dg.SkipReason(f"{reason}, but {wait}")
        context.log.info(reason)
        return dg.RunRequest(tags={SOURCE_ID_TAG: definition.source_id, TRIGGER_TAG: "sensor"})

    return deliveries_sensor
