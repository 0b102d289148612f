"""A run launched by the Worker tells the Worker's run ledger (D1) that it is running as soon as its step starts,
instead of leaving it to the run mirror's next tick (up to the sensor's interval later).

The push goes through the same internal route as the mirror (`POST /internal/runs/{run_id}/status`, the Worker's
single status writer), with the same time: when Dagster started the run. It is best effort: a run never fails
because the Worker is slow or down, and the run mirror still reports every status, so a run that dies before
pushing, or whose push was lost, is still recorded. The ledger only moves forward, so the mirror's later
`launched` and `running` for the same run are ignored repeats.
"""

from __future__ import annotations

import datetime as dt
import time

import dagster as dg

from dlt_platform.contract import RUN_ID_TAG
from dlt_platform.orchestration.worker_client import WorkerClient, WorkerError
from dlt_platform.settings import Settings

# A push is one small request on loopback or within the container's network; a Worker slower than this delays
# nothing but the ledger, which the mirror catches up.
PUSH_TIMEOUT_SECONDS = 3.0
RUNNING_MESSAGE = "running in Dagster"


def run_started_at(instance: dg.DagsterInstance, run_id: str) -> str:
    """When Dagster started the run (its STARTED event), as the mirror would report it; now if not recorded."""
    record = instance.get_run_record_by_id(run_id)
    started = record.start_time if record is not None and record.start_time else time.time()
    return dt.datetime.fromtimestamp(started, dt.UTC).isoformat()


def report_running(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, settings: Settings, client: WorkerClient | None = None
) -> bool:
    """Tell the Worker this run is running; True when the ledger applied it. Runs the Worker did not launch (no
    ledger run id tag) are left to the mirror, which registers them."""
    ledger_id = context.run.tags.get(RUN_ID_TAG)
    if not ledger_id or not settings.orchestrator_url or not settings.internal_token:
        return False
    at = run_started_at(context.instance, context.run.run_id)
    own_client = client is None
    client = client or WorkerClient(
        settings.orchestrator_url, settings.internal_token, timeout_seconds=PUSH_TIMEOUT_SECONDS
    )
    try:
        return client.post_status(
            ledger_id, "running", dagster_run_id=context.run.run_id, at=at, message=RUNNING_MESSAGE
        )
    except WorkerError as error:
        context.log.warning(
            f"Could not tell the Worker that run {ledger_id} is running ({error}); the run mirror will report it"
        )
        return False
    finally:
        if own_client:
            client.close()
