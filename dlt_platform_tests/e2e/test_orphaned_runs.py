"""A run whose Dagster processes were SIGKILLed mid-run. After the restart two things race to end it: Dagster's
run monitoring (the launcher reports runs of an earlier boot dead) and an operator's cancel through the Worker,
which force-marks the run canceled when Dagster cannot terminate it. Whichever wins, the cancel never answers
502, the run ends in Dagster and in the ledger, and the next run of its source is no longer held behind it."""

from __future__ import annotations

import os
import signal

import httpx

from dlt_platform_tests.e2e.stack_helpers import sigkill_dagster
from dlt_platform_tests.waiting import poll

SOURCE = "cloudflare_kv_orders"


def dagster_status(stack, dagster_run_id: str) -> str | None:
    query = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
    result = stack.dagster_graphql(query, {"id": dagster_run_id})["data"]["runOrError"]
    return result.get("status")


def sigkill_run_container(stack, dagster_run_id: str) -> None:
    """With run containers (`dlt-platform up`'s default) a run's worker is a process of the run-container host, not
    Dagster's child, and survives Dagster (e2e/test_run_containers.py). Killed too, the run is orphaned as it is
    under Dagster's default launcher."""
    if not stack.run_containers:
        return
    state = httpx.get(f"{stack.run_container_host_url}/containers/{dagster_run_id}", timeout=10,
                      headers={"Authorization": f"Bearer {stack.tokens()['DLT_INTERNAL_TOKEN']}"}).json()
    if state["status"] == "running":
        os.kill(state["pid"], signal.SIGKILL)


def test_cancel_ends_a_run_orphaned_by_sigkill_and_frees_its_source(stack, operator):
    run_id = operator.request_run(SOURCE)
    dagster_run_id = poll(lambda: operator.run(run_id)["dagster_run_id"], 120, 0.2, "the launch")
    # Kill while the run executes: its run worker and the code server that would report its death go together.
    poll(lambda: dagster_status(stack, dagster_run_id) == "STARTED", 120, 0.05, "the run to start")
    try:
        # The run's container first: killed after Dagster, it could finish the run meanwhile (it does not need
        # Dagster's processes to run).
        sigkill_run_container(stack, dagster_run_id)
        assert sigkill_dagster(stack) >= 3
    finally:
        stack.start_dagster()
    tokens = stack.tokens()
    response = httpx.post(f"{stack.worker_url}/runs/{run_id}/cancel", timeout=60,
                          headers={"Authorization": f"Bearer {tokens['DLT_OPERATOR_TOKEN']}", "X-Actor": "e2e"})

    if response.status_code == 200:  # the cancel came first: the dead run is marked canceled in Dagster
        assert response.json()["status"] == "canceled", response.json()
        assert response.json()["dagster"] in ("marked_canceled", "terminated"), response.json()
        assert poll(lambda: dagster_status(stack, dagster_run_id) == "CANCELED", 60, 0.5, "Dagster's cancel")
    else:  # run monitoring came first: the run already failed in Dagster, and the ledger keeps that ending
        assert response.status_code == 409, response.text
        assert dagster_status(stack, dagster_run_id) == "FAILURE"
    ended = poll(lambda: operator.run(run_id)["status"] in ("canceled", "failed"), 120, 0.5, "the ledger")
    assert ended
    # Dagster's per-source limit no longer waits behind the dead run.
    again = operator.request_run(SOURCE)
    assert operator.wait_for_runs([again], timeout=300)[again]["status"] == "succeeded", operator.run(again).get("message")
