"""The run-mirroring sensor against a real HTTP stand-in of the Worker's internal API on loopback.

Runs go through Dagster's own machinery: created in a SQLite instance, submitted to the queued run
coordinator (QUEUED), launched (STARTING) and executed by the instance's run launcher (STARTED, SUCCESS/FAILURE).
"""

import dagster as dg
import pytest

from dlt_platform.orchestration.assets import table_keys
from dlt_platform.orchestration.run_mirror import build_run_mirror_sensor
from dlt_platform.orchestration.worker_client import WorkerClient
from dlt_platform_tests.orchestration.conftest import (
    INTERNAL_TOKEN,
    LEDGER_ORDER,
    SAMPLE_COUNTS,
    TODAY,
    WorkerApiServer,
)
from dlt_platform_tests.orchestration.dagster_runs import LEADS, ORDERS, VENDORS, launch


def tick(sensor: dg.SensorDefinition, instance, cursor: str | None):
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        data = sensor.evaluate_tick(context)
    return data.cursor, (data.skip_message or "")


@pytest.fixture
def mirror(platform_env, worker_api, sample_definitions):
    settings = platform_env.__class__(**{**platform_env.__dict__, "orchestrator_url": worker_api.base_url,
                                         "internal_token": INTERNAL_TOKEN})
    return build_run_mirror_sensor(settings, {key: d.source_id for d in sample_definitions for key in table_keys(d)})


def ledger_run(ledger, dagster_run_id: str) -> dict:
    return next(run for run in ledger.runs.values() if run["dagster_run_id"] == dagster_run_id)


def posted_statuses(ledger, dagster_run_id: str) -> list[str]:
    return [body["status"] for method, path, body in ledger.requests
            if method == "POST" and body and body.get("dagster_run_id") == dagster_run_id and "status" in body]


def test_mirrors_every_transition_of_worker_and_other_runs(instance, workspace, mirror, worker_api):
    ledger = worker_api.ledger
    ledger.add_run("run_from_worker", "cloudflare_kv_orders")
    worker_run = launch(instance, workspace, ORDERS, {"dlt_platform/run_id": "run_from_worker",
                                                      "dlt_platform/trigger": "api",
                                                      "dlt_platform/source_id": "cloudflare_kv_orders"})
    partition = f"{TODAY:%Y-%m-%d}"
    scheduled_run = launch(instance, workspace, LEADS, {"dagster/schedule_name": "cloudflare_kv_leads_schedule",
                                             "dagster/partition": partition})
    failed_run = launch(instance, workspace, VENDORS, {}, {"ops": {"cloudflare_kv_vendors": {"config": {
        "from_snapshot": "/nonexistent/snapshot.ndjson.gz"}}}})
    assert [worker_run.status, scheduled_run.status, failed_run.status] == [
        dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]

    cursor, message = tick(mirror, instance, None)
    assert "reported 12 status change(s)" in message, message

    launched_by_worker = ledger.runs["run_from_worker"]
    assert launched_by_worker["history"] == ["queued", "launched", "running", "succeeded"]
    assert launched_by_worker["dagster_run_id"] == worker_run.run_id
    assert launched_by_worker["tables"]["orders_kv"] == SAMPLE_COUNTS["ORDERS_KV"]
    assert launched_by_worker["rows_loaded"] == sum(launched_by_worker["tables"].values())

    scheduled = ledger_run(ledger, scheduled_run.run_id)
    assert (scheduled["source_id"], scheduled["trigger"], scheduled["partition"]) == (
        "cloudflare_kv_leads", "schedule", partition)
    assert scheduled["history"] == ["queued", "launched", "running", "succeeded"]
    assert scheduled["rows_loaded"] == sum(1 for _ in range(SAMPLE_COUNTS["LEADS_KV"]) if _ % 10 == 0)

    failed = ledger_run(ledger, failed_run.run_id)
    assert (failed["trigger"], failed["status"]) == ("ui", "failed")
    assert failed["history"] == ["queued", "launched", "running", "failed"] and failed["message"]

    # Sent in order: every run's posted statuses move forward only.
    for run in (worker_run, scheduled_run, failed_run):
        statuses = posted_statuses(ledger, run.run_id)
        assert statuses == sorted(statuses, key=LEDGER_ORDER.index), statuses

    # Idempotent: nothing new to send from the cursor; a lost cursor resends everything, and nothing changes.
    requests_before = len(ledger.requests)
    assert tick(mirror, instance, cursor)[0] == cursor and len(ledger.requests) == requests_before
    snapshot = {run_id: dict(run) for run_id, run in ledger.runs.items()}
    assert tick(mirror, instance, None)[0] == cursor
    assert {run_id: dict(run) for run_id, run in ledger.runs.items()} == snapshot


def test_catches_up_after_the_worker_was_down(instance, workspace, mirror, worker_api):
    ledger = worker_api.ledger
    first = launch(instance, workspace, VENDORS, {"dlt_platform/source_id": "cloudflare_kv_vendors"})
    cursor, _ = tick(mirror, instance, None)
    assert ledger_run(ledger, first.run_id)["status"] == "succeeded"

    port = worker_api.server_address[1]
    worker_api.stop()
    while_down = launch(instance, workspace, ORDERS, {"dagster/backfill": "abcdefgh"},
                        {"ops": {"cloudflare_kv_orders": {"config": {"limit": 3}}}})
    for _ in range(2):  # the Worker stays down for several ticks: the cursor does not move
        down_cursor, message = tick(mirror, instance, cursor)
        assert down_cursor == cursor and "Worker unavailable" in message

    restarted = WorkerApiServer(ledger, port=port)
    try:
        caught_up_cursor, message = tick(mirror, instance, cursor)
        assert "reported 4 status change(s)" in message, message
        run = ledger_run(ledger, while_down.run_id)
        assert (run["trigger"], run["history"]) == ("backfill", ["queued", "launched", "running", "succeeded"])
        assert run["tables"]["orders_kv"] == 3
        assert int(caught_up_cursor) > int(cursor)
    finally:
        restarted.stop()


def test_worker_client_never_puts_the_token_in_errors(worker_api):
    worker_api.stop()
    with WorkerClient(worker_api.base_url, INTERNAL_TOKEN) as client:
        with pytest.raises(Exception) as raised:
            client.post_status("run_x", "running")
        assert INTERNAL_TOKEN not in str(raised.value) and INTERNAL_TOKEN not in repr(client)


WRONG_TOKEN = "cf-wrong-token-0123456789"


def test_a_failed_run_reports_its_cause_in_one_line_without_the_secret(instance, workspace, mirror, worker_api,
                                                                      monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", WRONG_TOKEN)  # the run reads its settings from the environment
    ledger = worker_api.ledger
    ledger.add_run("run_wrong_token", "cloudflare_kv_orders")
    run = launch(instance, workspace, ORDERS, {"dlt_platform/run_id": "run_wrong_token", "dlt_platform/trigger": "api",
                                               "dlt_platform/source_id": "cloudflare_kv_orders"})
    assert run.status == dg.DagsterRunStatus.FAILURE
    tick(mirror, instance, None)
    message = ledger.runs["run_wrong_token"]["message"]
    assert ledger.runs["run_wrong_token"]["status"] == "failed"
    assert message == "Cloudflare API HTTP 403: Authentication error (code 10000) (CLOUDFLARE_API_TOKEN)", message
    assert "Steps failed" not in message and "\n" not in message and WRONG_TOKEN not in message


def test_a_run_that_finds_the_warehouse_held_open_says_who_holds_it(instance, workspace, mirror, worker_api,
                                                                    platform_env, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("DLT_PLATFORM_DUCKDB_WAIT_SECONDS", "1")
    database = platform_env.duckdb_path
    database.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.read()", str(database)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"  # a DuckDB session outside the platform holds the file
        run = launch(instance, workspace, VENDORS, {"dlt_platform/source_id": "cloudflare_kv_vendors"})
    finally:
        holder.communicate("", timeout=30)
    assert run.status == dg.DagsterRunStatus.FAILURE
    tick(mirror, instance, None)
    message = ledger_run(worker_api.ledger, run.run_id)["message"]
    assert message.startswith(f"DuckDB warehouse {database.resolve()} locked by PID {holder.pid} "), message


def test_a_run_that_sets_a_package_aside_succeeds_with_its_reason_and_an_alert(instance, workspace, mirror, worker_api,
                                                                                platform_env, sample_definitions):
    import dlt

    from dlt_platform.loads import build_pipeline

    vendors = next(d for d in sample_definitions if d.source_id == "cloudflare_kv_vendors")
    assert launch(instance, workspace, VENDORS, {}).status == dg.DagsterRunStatus.SUCCESS  # the dataset exists
    pipeline = build_pipeline(vendors, platform_env)
    # A package a failed run left pending, whose load files the warehouse refuses (overwritten with junk).
    pipeline.extract(dlt.resource([{"cf_kv_key": "vendor:x", "name": "x"}], name="vendor_kv"))
    pipeline.normalize()
    [load_id] = pipeline.list_normalized_load_packages()
    for job in pipeline.get_load_package_info(load_id).jobs["new_jobs"]:
        if not job.job_file_info.table_name.startswith("_dlt"):
            with open(job.file_path, "wb") as junk:
                junk.write(b"not a load file")

    ledger = worker_api.ledger
    # DuckDB's refusal of the file may be passing (dlt does not call it terminal): the first run fails on it and
    # says why; the second, failing the same way, sets the package aside and loads.
    ledger.add_run("run_fails", "cloudflare_kv_vendors")
    failed = launch(instance, workspace, VENDORS, {"dlt_platform/run_id": "run_fails", "dlt_platform/trigger": "api",
                                                   "dlt_platform/source_id": "cloudflare_kv_vendors"})
    ledger.add_run("run_set_aside", "cloudflare_kv_vendors")
    run = launch(instance, workspace, VENDORS, {"dlt_platform/run_id": "run_set_aside", "dlt_platform/trigger": "api",
                                                "dlt_platform/source_id": "cloudflare_kv_vendors"})
    assert (failed.status, run.status) == (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS)
    tick(mirror, instance, None)
    assert "No magic bytes found" in ledger.runs["run_fails"]["message"]
    assert ledger.runs["run_fails"]["alert"] is None
    reported = ledger.runs["run_set_aside"]
    assert reported["status"] == "succeeded" and reported["tables"]["vendor_kv"] == SAMPLE_COUNTS["VENDOR_KV"]
    assert reported["alert"] is True
    assert reported["message"].startswith(f"loaded; load package {load_id} set aside in "), reported["message"]


def posted_load_jobs(ledger, dagster_run_id: str, status: str) -> dict | None:
    [body] = [body for method, path, body in ledger.requests
              if method == "POST" and body and body.get("dagster_run_id") == dagster_run_id
              and body.get("status") == status]
    return body.get("load_jobs")


def test_a_finished_run_reports_its_load_jobs_per_table_succeeded_or_failed(instance, workspace, mirror, worker_api,
                                                                            platform_env):
    import duckdb

    ledger = worker_api.ledger
    loaded = launch(instance, workspace, VENDORS, {"dlt_platform/source_id": "cloudflare_kv_vendors"})
    # The warehouse refuses the next load: the table became a view.
    with duckdb.connect(str(platform_env.duckdb_path)) as connection:
        connection.execute("DROP TABLE source_cloudflare.vendor_kv")
        connection.execute("CREATE VIEW source_cloudflare.vendor_kv AS SELECT 'x' AS cf_kv_key")
    refused = launch(instance, workspace, VENDORS, {"dlt_platform/source_id": "cloudflare_kv_vendors"})
    not_loaded = launch(instance, workspace, ORDERS, {}, {"ops": {"cloudflare_kv_orders": {"config": {
        "from_snapshot": "/nonexistent/snapshot.ndjson.gz"}}}})
    assert [loaded.status, refused.status, not_loaded.status] == [
        dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.FAILURE]
    tick(mirror, instance, None)

    # Counted for DuckDB as for BigQuery (only BigQuery tables are warned about and spaced); the budget is the
    # definition's default. One parquet file per table here, and dlt's state table.
    report = posted_load_jobs(ledger, loaded.run_id, "succeeded")
    assert report == {"destination": "duckdb", "dataset": "source_cloudflare", "budget": 1000,
                      "tables": {"vendor_kv": 1, "_dlt_pipeline_state": 1}}
    # BigQuery counts failed load jobs too: the failed run reports its package's jobs.
    failed = posted_load_jobs(ledger, refused.run_id, "failed")
    assert failed is not None and failed["tables"]["vendor_kv"] >= 1, failed
    assert posted_load_jobs(ledger, not_loaded.run_id, "failed") is None  # failed before loading: none sent
    # Statuses before the end carry none (the ledger counts them once, with the final status).
    assert all("load_jobs" not in body for method, path, body in ledger.requests
               if method == "POST" and body and body.get("status") in ("launched", "running"))
