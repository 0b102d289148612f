"""The whole platform on loopback: runs requested through the Worker, executed by Dagster, mirrored into D1."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import httpx

from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.orchestration.run_start import RUNNING_MESSAGE
from dlt_platform.settings import Settings
from dlt_platform.source_types.rest_api.local_api import SAMPLE_COUNTS
from dlt_platform_tests.e2e.stack_helpers import new_definition, warehouse
from dlt_platform_tests.waiting import poll

LIFECYCLE = ["queued", "launching", "launched", "running", "succeeded"]


def seeded(title: str) -> list:
    """The sample entries the stack seeded into a namespace (sample_data is deterministic per day)."""
    return sample_namespaces(dt.datetime.now(dt.UTC).date())[title]


def recent_leads(lookback_days: int) -> int:
    """Seeded leads a lookback run reads: keys dated within the last `lookback_days` days (today included)."""
    today = dt.datetime.now(dt.UTC).date()
    oldest = f"lead:{today - dt.timedelta(days=lookback_days - 1):%Y%m%d}"
    return sum(1 for entry in seeded("LEADS_KV") if entry.key >= oldest)


def statuses_of(run: dict) -> list[str]:
    seen: list[str] = []
    for event in run["events"]:
        if not seen or seen[-1] != event["status"]:
            seen.append(event["status"])
    return seen




def dagster_runs_tagged(stack, run_id: str) -> list[dict]:
    query = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results { runId status } } } }"""
    data = stack.dagster_graphql(query, {"filter": {"tags": [{"key": "dlt_platform/run_id", "value": run_id}]}})
    return data["data"]["runsOrError"]["results"]


def test_a_run_requested_through_the_worker_moves_through_every_status_and_loads_the_seeded_records(stack, operator):
    requested = time.monotonic()
    run_id = operator.request_run("cloudflare_kv_orders")
    runs = operator.wait_for_runs([run_id], timeout=300)
    run = operator.run(run_id)
    assert runs[run_id]["status"] == "succeeded", run
    assert statuses_of(run) == LIFECYCLE, run["events"]
    # `running` once: pushed by the run itself as its step starts, or reported by the run mirror (no message) when
    # its tick saw Dagster's STARTED first (the step can start more than the mirror's 3 s interval after it on busy
    # cores: seen in CI); whichever came second was an ignored repeat. test_run_start.py holds a run's first KV
    # request to prove the push itself.
    running = [event for event in run["events"] if event["status"] == "running"]
    assert [event["message"] for event in running] in ([RUNNING_MESSAGE], [None]), run["events"]
    assert run["trigger"] == "api" and run["dagster_run_id"]
    assert run["tables"] == {"orders_kv": len(seeded("ORDERS_KV")),
                             "orders_kv__items": run["tables"]["orders_kv__items"]}
    assert run["rows_loaded"] == sum(run["tables"].values())
    keys = {row[0] for row in warehouse(stack, "select cf_kv_key from source_cloudflare.orders_kv")}
    assert keys == {entry.key for entry in seeded("ORDERS_KV")}
    print(f"orders run: requested -> succeeded in {time.monotonic() - requested:.1f} s")


def test_a_run_started_in_dagster_is_registered_in_the_ledger_with_its_trigger(stack, operator):
    # What the Dagster UI's "Materialize" sends: no dlt_platform tags, so the mirror must register the run.
    mutation = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    params = {"selector": {"repositoryLocationName": "dlt_platform", "repositoryName": "__repository__",
                           "jobName": "__ASSET_JOB", "assetSelection": [{"path": ["source_cloudflare", "vendor_kv"]}]}}
    launched = stack.dagster_graphql(mutation, {"params": params})["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    dagster_run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 240
    mirrored = None
    while time.monotonic() < deadline:
        mirrored = next((r for r in operator.runs(source_id="cloudflare_kv_vendors")
                         if r["dagster_run_id"] == dagster_run_id), None)
        if mirrored and mirrored["status"] == "succeeded":
            break
        time.sleep(2)
    assert mirrored is not None, "the mirror sensor never registered the Dagster-started run"
    assert mirrored["trigger"] == "ui" and mirrored["status"] == "succeeded", mirrored
    assert mirrored["tables"] == {"vendor_kv": 300}


def test_one_idempotency_key_gives_one_run_and_a_duplicate_delivery_launches_once(stack, operator):
    key = f"e2e-{uuid.uuid4()}"
    # The consumer takes one batch at a time and delivers at once (no batch wait). A run of a source created just
    # now holds it while Dagster loads that source (seconds), so the keyed run stays queued meanwhile and the cron
    # handler re-sends it: the queue delivers two messages for one run.
    holding = f"hold_{uuid.uuid4().hex[:8]}"
    operator.create_source(new_definition(holding))
    ahead = operator.request_run(holding)
    first = operator.request_run("cloudflare_kv_leads", idempotency_key=key)

    def resent_by_reconciliation() -> bool:
        # Reconciliation re-sends a queued run once it is QUEUED_RESEND_MINUTES old (60 ms here): a pass that comes
        # sooner leaves it alone, so passes repeat until one re-sends it.
        assert operator.run(first)["status"] == "queued"  # behind `ahead`, which holds the consumer
        assert httpx.get(f"{stack.worker_url}/cdn-cgi/handler/scheduled", timeout=30).status_code == 200
        return "re-sent to the queue by reconciliation" in [e["message"] for e in operator.run(first)["events"]]

    poll(resent_by_reconciliation, timeout=20, interval=0.1, what=f"reconciliation to re-send the queued {first}")
    second = operator.request_run("cloudflare_kv_leads", idempotency_key=key)
    assert second == first
    final = operator.wait_for_runs([first, ahead], timeout=300)
    assert final[first]["status"] == "succeeded", operator.run(first).get("message")
    assert final[ahead]["status"] == "succeeded", operator.run(ahead).get("message")
    # The second delivery is acked without launching, and the Worker records that on the run.
    poll(lambda: [e for e in operator.run(first)["events"] if (e["data"] or {}).get("duplicate_delivery")],
         timeout=60, interval=0.5, what=f"the duplicate delivery of {first} to be acked")
    assert len(dagster_runs_tagged(stack, first)) == 1
    assert [r["run_id"] for r in operator.runs(source_id="cloudflare_kv_leads")].count(first) == 1


def test_with_dagster_down_a_run_is_dead_lettered_and_a_new_one_succeeds_once_it_is_back(stack, operator,
                                                                                          alert_receiver):
    stack.stop("dagster")
    try:
        run_id = operator.request_run("cloudflare_kv_orders")
        final = operator.wait_for_runs([run_id], timeout=240)[run_id]
        run = operator.run(run_id)
        assert final["status"] == "dead_lettered", run
        failures = [e for e in run["events"] if e["message"] and e["message"].startswith("launch failed")]
        assert len(failures) >= 3, run["events"]
        # Operators find out: one alert, to the webhook, naming source, run, reason and the admin page.
        alerts = alert_receiver.wait_for(run_id, timeout=30)
        assert len(alerts) == 1, alert_receiver.received
        text = alerts[0]["text"]
        assert "of source cloudflare_kv_orders dead_lettered: dead-lettered after" in text, text
        assert f"{stack.worker_url}/admin/runs/{run_id}" in text, text
        secrets = [stack.tokens()[name] for name in ("DLT_OPERATOR_TOKEN", "DLT_INTERNAL_TOKEN", "ALERT_WEBHOOK_URL")]
        assert not any(secret in str(alerts[0]) for secret in secrets)
    finally:
        stack.start_dagster()
    again = operator.request_run("cloudflare_kv_orders")
    assert operator.wait_for_runs([again], timeout=300)[again]["status"] == "succeeded", operator.run(again).get("message")
    assert len(alert_receiver.about(run_id)) == 1, "the alert was sent again"
    assert not alert_receiver.about(again), "a run that succeeded raised an alert"


def test_the_main_command_reuses_a_running_stack_and_prints_the_summary(stack, monkeypatch):
    from typer.testing import CliRunner

    from dlt_platform.cli import app

    monkeypatch.setenv("DLT_PLATFORM_DATA_DIR", str(stack.paths.data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["up", "--once", "--state-dir", str(stack.paths.state_dir),
                                      "--worker-port", str(stack.worker_port), "--dagster-port", str(stack.dagster_port),
                                      "--sample-api-port", str(stack.sample_api_port)])
    assert result.exit_code == 0, result.output
    assert f"Worker: reused at {stack.worker_url}" in result.output
    assert "Dagster: reused" in result.output and "unchanged" in result.output
    lookback = Settings(config_path=stack.config_path).get_source("cloudflare_kv_leads").extract.incremental.lookback
    assert f"orders_kv {len(seeded('ORDERS_KV'))}" in result.output
    assert f"leads_kv {recent_leads(lookback)}" in result.output
    issues = SAMPLE_COUNTS["issues"]
    assert "Sample REST API: reused" in result.output
    # Earlier tests ran this source on the same stack (its cursors have moved, so the rows this run read vary): the
    # warehouse holds every issue once.
    assert warehouse(stack, "select count(distinct id), count(*) from source_sample_api.issues") == [(issues, issues)]
    run_lines = [line for line in result.output.splitlines() if line.split()[-1:] == ["api"]]
    # A run of every enabled sample source, each succeeded (the webhook source loads whatever deliveries wait).
    enabled = [d.source_id for d in Settings(config_path=stack.config_path).load_sources() if d.enabled]
    assert len(run_lines) == len(enabled) and all("succeeded" in line for line in run_lines), result.output
    assert all(any(source_id in line for line in run_lines) for source_id in enabled), result.output
    assert not any("cloudflare_kv_vendors" in line for line in run_lines), "disabled sources are not run"
    assert f"{stack.dagster_url}/dagster" in result.output and f"{stack.worker_url}/admin" in result.output
    assert stack.tokens()["DLT_OPERATOR_TOKEN"] not in result.output


def test_operator_commands_against_the_local_orchestrator(stack, operator, monkeypatch):
    from typer.testing import CliRunner

    from dlt_platform.cli import app

    monkeypatch.setenv("DLT_ORCHESTRATOR_URL", stack.worker_url)
    monkeypatch.setenv("DLT_OPERATOR_TOKEN", stack.tokens()["DLT_OPERATOR_TOKEN"])
    monkeypatch.setenv("COLUMNS", "200")
    status = CliRunner().invoke(app, ["check-deployment"])
    assert status.exit_code == 0, status.output
    assert "health: ok (D1 ok" in status.output and "cloudflare_kv_vendors" in status.output
    assert "launch backlog: 0 runs queued or launching" in status.output

    # verify-deployment against a loaded table leaves every row (its limited run merges, it never replaces).
    full = operator.request_run("cloudflare_kv_orders")
    assert operator.wait_for_runs([full], timeout=300)[full]["status"] == "succeeded"
    before = warehouse(stack, "select cf_kv_key from source_cloudflare.orders_kv order by 1")
    items_before = warehouse(stack, "select count(*) from source_cloudflare.orders_kv__items")
    assert len(before) == len(seeded("ORDERS_KV"))
    verified = CliRunner().invoke(app, ["verify-deployment", "--source-id", "cloudflare_kv_orders", "--limit", "15"])
    assert verified.exit_code == 0, verified.output
    assert "verified: run_" in verified.output and "orders_kv 15" in verified.output
    assert "merged into source_cloudflare.orders_kv on cf_kv_key (definition: replace)" in verified.output
    assert "no row was removed" in verified.output
    assert warehouse(stack, "select cf_kv_key from source_cloudflare.orders_kv order by 1") == before
    assert warehouse(stack, "select count(*) from source_cloudflare.orders_kv__items") == items_before

    monkeypatch.setenv("DLT_OPERATOR_TOKEN", "wrong-token")
    refused = CliRunner().invoke(app, ["check-deployment"])
    assert refused.exit_code == 1 and "HTTP 401" in refused.output and "wrong-token" not in refused.output
