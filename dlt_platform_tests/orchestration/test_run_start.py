"""A Worker-launched run tells the Worker's ledger it is running from inside the run, while it is still loading.

The run goes through Dagster's own machinery (queued run coordinator, run launcher, a SQLite instance) against
real HTTP on loopback: the Worker's internal API stand-in, and a KV API double that holds every request until the
test lets it go, so the run is provably still in progress when the ledger shows `running`.
"""

import datetime as dt
import json
import threading

import pytest

from dlt_platform.contract import RUN_ID_TAG, SOURCE_ID_TAG, TRIGGER_TAG
from dlt_platform.orchestration.run_start import RUNNING_MESSAGE
from dlt_platform.source_types.cloudflare_kv.local_api import KVApiServer, KVApiState
from dlt_platform_tests.orchestration.conftest import (
    ACCOUNT_ID,
    API_TOKEN,
    INTERNAL_TOKEN,
    NAMESPACE_IDS,
    SAMPLE_CONFIG,
)
from dlt_platform_tests.orchestration.dagster_runs import ORDERS, launch
from dlt_platform_tests.waiting import poll

LEDGER_RUN = "run_pushed"


class HeldKVApiState(KVApiState):
    """Every request waits until `release` is set (or 60 s pass, so a broken test cannot hang the suite)."""

    def __init__(self, account_id: str, token: str) -> None:
        super().__init__(account_id, token)
        self.release = threading.Event()
        self.held = threading.Event()

    def take_fault(self, path: str):
        self.held.set()
        self.release.wait(timeout=60)
        return super().take_fault(path)


@pytest.fixture
def held_kv(kv_entries):
    state = HeldKVApiState(ACCOUNT_ID, API_TOKEN)
    namespace = state.add_namespace(NAMESPACE_IDS["ORDERS_KV"], "ORDERS_KV")
    for entry in kv_entries["ORDERS_KV"]:
        namespace.put(entry.key, entry.value, entry.metadata, entry.expiration)
    with KVApiServer(state) as server:
        try:
            yield server
        finally:
            state.release.set()  # a failed test must not leave a handler waiting


@pytest.fixture
def worker_env(monkeypatch, platform_env, worker_api, held_kv):
    """Definitions from the Worker stand-in (as in the container), KV reads from the held double."""
    worker_api.ledger.sources_document = json.loads(SAMPLE_CONFIG.read_text())
    worker_api.ledger.add_run(LEDGER_RUN, "cloudflare_kv_orders")
    worker_api.ledger.apply(LEDGER_RUN, {"status": "launched"})
    monkeypatch.setenv("DLT_ORCHESTRATOR_URL", worker_api.base_url)
    monkeypatch.setenv("DLT_INTERNAL_TOKEN", INTERNAL_TOKEN)
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", held_kv.base_url)
    return worker_api


WORKER_TAGS = {RUN_ID_TAG: LEDGER_RUN, SOURCE_ID_TAG: "cloudflare_kv_orders", TRIGGER_TAG: "api"}


def launch_in_background(instance, workspace) -> tuple[threading.Thread, list]:  # noqa: F811 (fixtures)
    """The run launcher used here executes the run synchronously: run it on a thread, as a run worker would."""
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(launch(instance, workspace, ORDERS, WORKER_TAGS)),
                              daemon=True)
    thread.start()
    return thread, outcome


def test_the_ledger_shows_running_while_the_run_is_still_loading(instance, worker_env, held_kv,  # noqa: F811
                                                                   workspace):  # noqa: F811 (after worker_env)
    ledger = worker_env.ledger
    thread, outcome = launch_in_background(instance, workspace)
    try:
        poll(lambda: ledger.runs[LEDGER_RUN]["status"] == "running", timeout=60, interval=0.05,
             what="the ledger to show the run as running")
        # The run goes on to its first KV request and waits there: running in the ledger, nothing loaded yet.
        assert held_kv.state.held.wait(timeout=60) and thread.is_alive()
        assert instance.get_latest_materialization_event(ORDERS) is None
        run = ledger.runs[LEDGER_RUN]
        assert run["history"] == ["queued", "launched", "running"]
        assert run["message"] == RUNNING_MESSAGE and run["dagster_run_id"]
        push = next(body for _method, path, body in ledger.requests
                    if path == f"/internal/runs/{LEDGER_RUN}/status" and body["status"] == "running")
        # Reported with Dagster's own start time of the run, the time the mirror would report.
        record = instance.get_run_record_by_id(run["dagster_run_id"])
        assert record.dagster_run.status.value == "STARTED"
        assert dt.datetime.fromisoformat(push["at"]).timestamp() == pytest.approx(record.start_time, abs=0.001)
    finally:
        held_kv.state.release.set()
        thread.join(timeout=120)
    assert outcome and outcome[0].run_id == ledger.runs[LEDGER_RUN]["dagster_run_id"]
    assert instance.get_run_by_id(outcome[0].run_id).status.value == "SUCCESS"
    # The run pushed once; the mirror's later `running` for it is an ignored repeat.
    assert ledger.apply(LEDGER_RUN, {"status": "running"})[1]["applied"] is False


def test_a_worker_that_cannot_be_reached_never_fails_the_run(instance, worker_env, held_kv,  # noqa: F811
                                                              workspace):  # noqa: F811 (after worker_env)
    worker_env.stop()  # the definitions were read while it answered
    held_kv.state.release.set()
    run = launch(instance, workspace, ORDERS, WORKER_TAGS)
    assert instance.get_run_by_id(run.run_id).status.value == "SUCCESS"
    warnings = [event.message for event in instance.all_logs(run.run_id)
                if "could not tell the worker" in (event.message or "").lower()]
    assert warnings and INTERNAL_TOKEN not in warnings[0]
