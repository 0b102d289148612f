"""The r2_files sample source through the local stack: a run requested through the Worker loads the Logpush
batches `up` seeded into the local R2 folder, timestamps typed; a second run reads nothing new."""

from __future__ import annotations

import datetime as dt

from dlt_platform.source_types.r2_files.local_api import SAMPLE_BATCHES, SAMPLE_LINES_PER_BATCH
from dlt_platform_tests.e2e.stack_helpers import warehouse


def test_an_r2_files_run_requested_through_the_worker_loads_the_seeded_logpush_batches(stack, operator):
    first = operator.request_run("r2_edge_logs")
    assert operator.wait_for_runs([first], timeout=300)[first]["status"] == "succeeded", operator.run(first).get("message")
    seeded = SAMPLE_BATCHES * SAMPLE_LINES_PER_BATCH
    [(rows, typed, earliest)] = warehouse(
        stack, "select count(*), count(edge_start_timestamp), min(edge_start_timestamp) from source_r2.http_requests"
    )
    assert rows == typed == seeded
    today = dt.datetime.now(dt.UTC).date()
    assert earliest == dt.datetime.combine(today, dt.time(), dt.UTC)

    again = operator.request_run("r2_edge_logs")
    assert operator.wait_for_runs([again], timeout=300)[again]["status"] == "succeeded", operator.run(again).get("message")
    assert warehouse(stack, "select count(*) from source_r2.http_requests") == [(seeded,)]
