"""Mirror every status change of every run of a platform asset into the Worker's run ledger (D1).

The cursor is the storage id of the last run-status event handed to the Worker. Events are sent in storage-id
order; when the Worker is unavailable the tick stops at that event and keeps the cursor, so the next tick
resends it (the Worker ignores repeats and backward moves), and nothing is skipped however long it was down.
Runs the Worker launched carry its run id in a tag; any other run (schedule, UI, backfill, sensor) is
registered first, which is idempotent on the Dagster run id.
"""

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import dagster as dg
from dagster import DagsterEventType

from dlt_platform.contract import (
    PARTITION_TAG,
    RUN_ID_TAG,
    SOURCE_ID_TAG,
    TERMINAL_STATUSES,
    TRIGGER_TAG,
    TRIGGERS,
)
from dlt_platform.failed_packages import SET_ASIDE_METADATA
from dlt_platform.loads import LOAD_JOBS_METADATA
from dlt_platform.orchestration.failure_cause import masked, one_line, run_failure_cause
from dlt_platform.orchestration.worker_client import (
    WorkerClient,
    WorkerRejected,
    WorkerUnavailable,
    worker_client_for,
)
from dlt_platform.settings import Settings

SENSOR_NAME = "mirror_runs_to_worker"
# The run-status events the ledger follows (RunStatusChangeRecordsFilter takes only run-status event types).
LedgerEventType = Literal[
    DagsterEventType.RUN_ENQUEUED,
    DagsterEventType.RUN_STARTING,
    DagsterEventType.RUN_START,
    DagsterEventType.RUN_SUCCESS,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_CANCELING,
    DagsterEventType.RUN_CANCELED,
]
LEDGER_STATUS_BY_EVENT: dict[LedgerEventType, str] = {
    DagsterEventType.RUN_ENQUEUED: "launched",
    DagsterEventType.RUN_STARTING: "launched",
    DagsterEventType.RUN_START: "running",
    DagsterEventType.RUN_SUCCESS: "succeeded",
    DagsterEventType.RUN_FAILURE: "failed",
    DagsterEventType.RUN_CANCELING: "canceled",
    DagsterEventType.RUN_CANCELED: "canceled",
}
MAX_MESSAGE_CHARS = 2000


def pending_status_events(instance: dg.DagsterInstance, after_storage_id: int, limit: int) -> list:
    """Run-status events after the cursor, oldest first. Each event type is its own query; when one of them was
    cut at `limit`, later events of other types wait for a later batch so the merged order has no gap."""
    records: list[dg.EventLogRecord] = []
    horizon: int | None = None
    for event_type in LEDGER_STATUS_BY_EVENT:
        result = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after_storage_id),
            limit=limit,
            ascending=True,
        )
        records.extend(result.records)
        if result.has_more and result.records:
            last = result.records[-1].storage_id
            horizon = last if horizon is None else min(horizon, last)
    records.sort(key=lambda record: record.storage_id)
    return [record for record in records if horizon is None or record.storage_id <= horizon]


def trigger_of(run: dg.DagsterRun) -> str:
    tags = run.tags
    if tags.get(TRIGGER_TAG) in TRIGGERS:
        return tags[TRIGGER_TAG]
    if "dagster/schedule_name" in tags:
        return "schedule"
    if "dagster/sensor_name" in tags:
        return "sensor"
    if "dagster/backfill" in tags:
        return "backfill"
    if "dagster/parent_run_id" in tags:
        return "retry"
    return "ui"


def partition_of(run: dg.DagsterRun) -> str | None:
    tags = run.tags
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


@dataclass
class MirrorOutcome:
    cursor: int
    reported: int = 0
    ignored: int = 0
    rejected: list[str] = field(default_factory=list)
    worker_down: str | None = None

    @property
    def summary(self) -> str:
        text = f"reported {self.reported} status change(s), ignored {self.ignored}, cursor {self.cursor}"
        if self.rejected:
            text += f"; rejected by the Worker: {'; '.join(self.rejected)}"
        if self.worker_down:
            text += f"; Worker unavailable, retrying next tick: {self.worker_down}"
        return text


class RunMirror:
    def __init__(
        self,
        client: WorkerClient,
        source_by_key: dict[dg.AssetKey, str],
        log=None,
        batch_size: int = 200,
        time_budget_seconds: float = 40.0,
    ) -> None:
        self.client, self.source_by_key, self.log = client, source_by_key, log
        self.batch_size, self.time_budget_seconds = batch_size, time_budget_seconds
        self._ledger_ids: dict[str, str] = {}

    def source_of(self, run: dg.DagsterRun) -> str | None:
        """The platform source a run loads: its tag (Worker and schedule runs), else its asset selection."""
        if run.tags.get(SOURCE_ID_TAG):
            return run.tags[SOURCE_ID_TAG]
        # A run selecting several sources is recorded under the first (sorted) one.
        sources = sorted({self.source_by_key[key] for key in run.asset_selection or () if key in self.source_by_key})
        return sources[0] if sources else None

    def rows_of(self, instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, int]:
        tables: dict[str, int] = {}
        seen: set[dg.AssetKey] = set()
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        for record in records:
            materialization = record.asset_materialization
            # A partition range records one materialization per partition with the same load's counts.
            if materialization is None or materialization.asset_key in seen:
                continue
            seen.add(materialization.asset_key)
            rows = (materialization.metadata or {}).get("rows_by_table")
            counts = rows.value if isinstance(rows, dg.JsonMetadataValue) else None
            for table, count in (counts if isinstance(counts, Mapping) else {}).items():
                tables[table] = tables.get(table, 0) + int(count)
        return tables

    def set_aside_of(self, instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
        """What the run's materializations say it set aside (failed_packages.py), or None."""
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        for record in records:
            value = (
                (record.asset_materialization.metadata or {}).get(SET_ASIDE_METADATA)
                if record.asset_materialization
                else None
            )
            if value is not None:
                return f"loaded; {value.value}"
        return None

    def load_jobs_of(self, instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict | None:
        """The load jobs per table the run's load step recorded (assets.record_load_jobs), or None."""
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_OBSERVATION).records
        report: dict | None = None
        for record in records:
            observation = record.asset_observation
            value = (observation.metadata or {}).get(LOAD_JOBS_METADATA) if observation else None
            if not isinstance(value, dg.JsonMetadataValue) or not isinstance(value.value, Mapping):
                continue
            if report is None:
                report = {**value.value, "tables": dict(value.value["tables"])}
                continue
            for table, jobs in value.value["tables"].items():
                report["tables"][table] = report["tables"].get(table, 0) + int(jobs)
        return report

    def report(self, instance: dg.DagsterInstance, run: dg.DagsterRun, record, source_id: str) -> None:
        event = record.event_log_entry.dagster_event
        status = LEDGER_STATUS_BY_EVENT[event.event_type]
        at = dt.datetime.fromtimestamp(record.timestamp, dt.UTC).isoformat()
        ledger_id = run.tags.get(RUN_ID_TAG) or self._ledger_ids.get(run.run_id)
        if ledger_id is None:
            ledger_id = self.client.register_run(
                run.run_id, source_id, trigger_of(run), partition_of(run), status=status, at=at
            )
            self._ledger_ids[run.run_id] = ledger_id
        tables = self.rows_of(instance, run) if status == "succeeded" else None
        message, alert = None, False
        if status == "succeeded":
            # A run that loaded but set an earlier load package aside says so, and asks for an alert.
            set_aside = self.set_aside_of(instance, run)
            message, alert = (one_line(masked(set_aside), MAX_MESSAGE_CHARS), True) if set_aside else (None, False)
        elif status == "failed":
            message = run_failure_cause(instance, run.run_id, event.message or None)
        elif status == "canceled":
            message = one_line(masked(event.message), MAX_MESSAGE_CHARS) if event.message else None
        self.client.post_status(
            ledger_id,
            status,
            dagster_run_id=run.run_id,
            at=at,
            message=message,
            alert=alert,
            rows_loaded=sum(tables.values()) if tables is not None else None,
            tables=tables,
            # With the final status, which the ledger applies once: each load job is counted once.
            load_jobs=self.load_jobs_of(instance, run) if status in TERMINAL_STATUSES else None,
        )

    def mirror(self, instance: dg.DagsterInstance, cursor: int) -> MirrorOutcome:
        outcome = MirrorOutcome(cursor=cursor)
        started = time.monotonic()
        while time.monotonic() - started < self.time_budget_seconds:
            records = pending_status_events(instance, outcome.cursor, self.batch_size)
            if not records:
                break
            for record in records:
                run = instance.get_run_by_id(record.run_id)
                source_id = self.source_of(run) if run is not None else None
                if run is None or source_id is None:
                    outcome.ignored += 1
                else:
                    try:
                        self.report(instance, run, record, source_id)
                        outcome.reported += 1
                    except WorkerUnavailable as error:
                        outcome.worker_down = str(error)
                        return outcome  # cursor stays before this event: it is sent again next tick
                    except WorkerRejected as error:
                        # A client error repeats forever; holding the cursor would stall every later run.
                        outcome.rejected.append(f"run {record.run_id}: {error}")
                        if self.log is not None:
                            self.log.warning(f"Worker rejected the status of run {record.run_id}: {error}")
                outcome.cursor = record.storage_id
        return outcome


# A run's end reaches D1 at the sensor's next tick (its start is pushed by the run itself, run_start.py): a tick
# is one status-change query and, only when something changed, one POST per change, so it can be frequent.
MIRROR_INTERVAL_SECONDS = 3


def build_run_mirror_sensor(
    settings: Settings, source_by_key: dict[dg.AssetKey, str], minimum_interval_seconds: int = MIRROR_INTERVAL_SECONDS
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reports every status change of platform runs to the Worker's run ledger (D1).",
    )
    def mirror_runs_to_worker(context: dg.SensorEvaluationContext):
        with worker_client_for(settings) as client:
            outcome = RunMirror(client, source_by_key, context.log).mirror(context.instance, int(context.cursor or 0))
        context.update_cursor(str(outcome.cursor))
        return dg.SkipReason(outcome.summary)

    return mirror_runs_to_worker
