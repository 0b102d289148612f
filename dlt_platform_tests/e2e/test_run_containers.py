"""Every run in its own run container (locally: a process of the run-container host, started through the Worker).

Probed from outside the run, through /proc: the run's process is the host's child, not Dagster's, and its
environment holds its own source's secrets and no other's. A run container killed mid-run fails the run in
Dagster within run monitoring's bound, and the ledger follows.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from dlt_platform.source_types.rest_api.local_api import SAMPLE_API_CREDENTIALS
from dlt_platform_tests.e2e.stack_helpers import sigkill_dagster, warehouse
from dlt_platform_tests.waiting import poll

# dagster.yaml run_monitoring.poll_interval_seconds (10) plus the daemon's own loop and the ledger's report.
KILL_TO_FAILED_BOUND_SECONDS = 60


def host_state(stack, name: str) -> dict:
    token = stack.tokens()["DLT_INTERNAL_TOKEN"]
    return httpx.get(f"{stack.run_container_host_url}/containers/{name}", timeout=10,
                     headers={"Authorization": f"Bearer {token}"}).json()


def running_pid(stack, operator, run_id: str) -> tuple[str, int]:
    """The Dagster run id and the pid of the run's process, as soon as the host runs it."""
    dagster_run_id = poll(lambda: operator.run(run_id)["dagster_run_id"], 120, 0.1, "the launch")
    state = poll(lambda: (s := host_state(stack, dagster_run_id))["status"] != "not_found" and s, 120, 0.05,
                 "the run container to start")
    assert state["status"] == "running", state
    return dagster_run_id, state["pid"]


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def dagster_status(stack, dagster_run_id: str) -> str | None:
    query = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
    return stack.dagster_graphql(query, {"id": dagster_run_id})["data"]["runOrError"].get("status")


def test_each_run_is_a_process_of_the_host_with_only_its_own_sources_secrets(stack, operator):
    host = psutil.Process(stack.processes["run_containers"].pid)
    dagster = psutil.Process(stack.processes["dagster"].pid)
    tokens = stack.tokens()
    seen: dict[str, dict[str, str]] = {}
    for source_id in ("sample_api_issues", "cloudflare_kv_orders"):
        run_id = operator.request_run(source_id)
        _, pid = running_pid(stack, operator, run_id)
        seen[source_id] = environ_of(pid)
        process = psutil.Process(pid)
        assert process.ppid() == host.pid
        assert process not in dagster.children(recursive=True)
        run = operator.wait_for_runs([run_id], timeout=300)[run_id]
        assert run["status"] == "succeeded", operator.run(run_id).get("message")
        events = operator.run(run_id)["events"]
        started = [event for event in events if event["message"] == "run container started"]
        assert len(started) == 1 and started[0]["data"]["source_id"] == source_id, events
    api, kv = seen["sample_api_issues"], seen["cloudflare_kv_orders"]
    # The rest_api source names the sample API's token: its run has it, listed for its host only.
    assert api["SAMPLE_API_TOKEN"] == SAMPLE_API_CREDENTIALS["SAMPLE_API_TOKEN"]
    assert "SAMPLE_API_TOKEN" in api["DLT_SOURCE_SECRETS"]
    # The KV source names no secret: none of the sample API's, and nothing of the operator's, reach its run.
    for name in SAMPLE_API_CREDENTIALS:
        assert name not in kv and name not in kv.get("DLT_SOURCE_SECRETS", "")
    for environment in (api, kv):
        assert tokens["DLT_OPERATOR_TOKEN"] not in environment.values()
        assert tokens["ADMIN_SESSION_KEY"] not in environment.values()
        assert environment["DLT_INTERNAL_TOKEN"] == tokens["DLT_INTERNAL_TOKEN"]


def test_a_run_container_killed_mid_run_fails_the_run_within_the_bound_and_the_ledger_follows(stack, operator):
    run_id = operator.request_run("sample_api_issues")
    dagster_run_id, pid = running_pid(stack, operator, run_id)
    poll(lambda: dagster_status(stack, dagster_run_id) == "STARTED", 120, 0.05, "the run to start")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    poll(lambda: dagster_status(stack, dagster_run_id) == "FAILURE", KILL_TO_FAILED_BOUND_SECONDS, 0.5,
         "run monitoring to fail the run")
    failed_after = time.monotonic() - killed
    run = operator.wait_for_runs([run_id], timeout=KILL_TO_FAILED_BOUND_SECONDS)[run_id]
    assert run["status"] == "failed", operator.run(run_id)
    messages = [event["message"] for event in operator.run(run_id)["events"]]
    assert "run container exited with code -9" in messages, messages
    print(f"run container killed -> Dagster FAILURE in {failed_after:.1f} s")
    # The source is free again: its next run succeeds.
    again = operator.request_run("sample_api_issues")
    assert operator.wait_for_runs([again], timeout=300)[again]["status"] == "succeeded"


def test_a_run_outlives_sigkilled_control_processes_and_ends_succeeded(stack, operator):
    run_id = operator.request_run("sample_api_issues")
    dagster_run_id, pid = running_pid(stack, operator, run_id)
    poll(lambda: dagster_status(stack, dagster_run_id) == "STARTED", 120, 0.05, "the run to start")
    try:
        assert sigkill_dagster(stack) >= 3
        # The run's process is the host's: Dagster's death did not take it (on a quiet machine it may already have
        # ended; its exit code 0 below says it was not killed).
        assert host_state(stack, dagster_run_id)["status"] in ("running", "exited")
    finally:
        stack.start_dagster()
    assert poll(lambda: dagster_status(stack, dagster_run_id) in ("SUCCESS", "FAILURE") and
                dagster_status(stack, dagster_run_id), 300, 0.5, "the run's end") == "SUCCESS"
    run = operator.wait_for_runs([run_id], timeout=120)[run_id]
    assert run["status"] == "succeeded", operator.run(run_id).get("message")
    assert host_state(stack, dagster_run_id).items() >= {"name": dagster_run_id, "status": "exited", "exit_code": 0,
                                                         "reason": "exit"}.items()
    # Every row: the issues the sample API serves, each once (merge on id), after the runs before this one too.
    assert warehouse(stack, "select count(distinct id), count(*) from source_sample_api.issues") == [(300, 300)]


def test_a_sources_runner_size_goes_from_its_definition_to_its_run_container_and_the_ledger(stack, operator):
    """runner.instance_type picks the run container's class in production; locally the host records it."""
    sample = operator.source("sample_api_issues")["definition"]
    sized = {**sample, "source_id": "sample_api_issues_sized", "runner": {"instance_type": "standard-2"},
             "destination": {**sample["destination"], "dataset": "source_sample_api_sized"}}
    if operator.source(sized["source_id"]) is None:
        operator.create_source(sized)
    run_id = operator.request_run(sized["source_id"])
    dagster_run_id, _ = running_pid(stack, operator, run_id)
    assert host_state(stack, dagster_run_id)["instance_type"] == "standard-2"
    run = operator.wait_for_runs([run_id], timeout=300)[run_id]
    assert run["status"] == "succeeded", operator.run(run_id).get("message")
    started = [event for event in operator.run(run_id)["events"] if event["message"] == "run container started"]
    assert [event["data"]["instance_type"] for event in started] == ["standard-2"]
    # The launcher keeps the size as a run tag, so Dagster's health checks and stops name the same class.
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }"
    tags = {tag["key"]: tag["value"] for tag in stack.dagster_graphql(query, {"id": dagster_run_id})["data"]
            ["runOrError"]["tags"]}
    assert tags["dlt_platform/run_container_instance_type"] == "standard-2"


def test_two_runs_of_one_source_requested_at_once_take_turns(stack, operator):
    """The per-source cap (dagster.yaml: the source tag's limit 1 and each source's pool): a second run of a source
    waits for the first even though each has a run container of its own and the global cap has room."""
    run_ids = [operator.request_run("cloudflare_kv_leads") for _ in range(2)]
    runs = operator.wait_for_runs(run_ids, timeout=600)
    assert [runs[run_id]["status"] for run_id in run_ids] == ["succeeded", "succeeded"], runs
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { startTime endTime } } }"
    spans = sorted((times["startTime"], times["endTime"]) for times in (
        stack.dagster_graphql(query, {"id": operator.run(run_id)["dagster_run_id"]})["data"]["runOrError"]
        for run_id in run_ids))
    assert spans[0][1] <= spans[1][0], spans
