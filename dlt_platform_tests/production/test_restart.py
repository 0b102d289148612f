"""Dagster in production shape against a real Postgres and the real Worker (wrangler dev, local D1):
everything Dagster records lands in Postgres, and a SIGKILL of `dlt-platform serve` mid-run loses nothing."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import time

import httpx
import psutil

from dlt_platform.duckdb_warehouse import read_connection
from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.orchestration.run_launcher import BOOT_ID_ENV
from dlt_platform_tests.production.conftest import MERGED_SOURCE, MINUTELY_SOURCE
from dlt_platform_tests.waiting import poll

RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
SCHEDULE = """query($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) {
  ... on Schedule { scheduleState { status ticks(limit: 5) { status } } } } }"""
# Seconds from the SIGKILL to the run marked failed in D1 that the docs promise (docs/dagster.md, "Restarts"):
# the restart itself, one run-monitoring poll (10 s) and one run-mirror tick (10 s).
FAILED_IN_D1_WITHIN = 180


def warehouse_rows(stack, table: str) -> tuple[int, int]:
    with read_connection(stack.paths.data_dir / "warehouse.duckdb") as connection:
        return connection.execute(f"select count(*), count(distinct cf_kv_key) from source_cloudflare.{table}").fetchone()


def test_runs_queue_schedules_and_sensor_cursor_are_recorded_in_postgres(pg_stack, postgres):
    with pg_stack.operator() as operator:
        first, second = (operator.request_run(MERGED_SOURCE, idempotency_key=f"pg-{n}") for n in (1, 2))
        runs = operator.wait_for_runs([first, second], timeout=300)
    assert {run["status"] for run in runs.values()} == {"succeeded"}, runs

    db = pg_stack.database
    dagster_ids = [runs[first]["dagster_run_id"], runs[second]["dagster_run_id"]]
    spans = postgres.query(db, "select start_time, end_time from runs where run_id = any(%s) order by start_time",
                           (dagster_ids,))
    assert len(spans) == 2 and spans[0][1] <= spans[1][0], f"the per-source limit let runs overlap: {spans}"
    materialized = postgres.query(db, "select count(*) from event_logs where run_id = any(%s) and "
                                      "dagster_event_type = 'ASSET_MATERIALIZATION'", (dagster_ids,))
    assert materialized[0][0] >= 2
    cursor_rows = postgres.query(db, "select instigator_body from instigators where instigator_body like %s",
                                 ("%mirror_runs_to_worker%",))
    assert cursor_rows and re.search(r'"cursor": ?"\d+"', cursor_rows[0][0]), "the run mirror's cursor is not in Postgres"

    schedule_ticks = poll(lambda: postgres.query(db, "select count(*) from job_ticks where tick_body like %s",
                                                 (f"%{MINUTELY_SOURCE}_schedule%",))[0][0], 90, 2,
                          "a tick of the every-minute schedule in Postgres")
    assert schedule_ticks >= 1
    home = pg_stack.paths.dagster_home
    assert not [path for path in home.rglob("*") if path.suffix in {".db", ".sqlite"}], "SQLite files in DAGSTER_HOME"


def test_the_guard_lets_the_workers_proxy_through_and_refuses_foreign_hosts(pg_stack):
    token = pg_stack.tokens()["DLT_OPERATOR_TOKEN"]
    through_worker = httpx.get(f"{pg_stack.worker_url}/dagster/server_info", timeout=30,
                               headers={"Authorization": f"Bearer {token}"})
    assert through_worker.status_code == 200 and "dagster_webserver_version" in through_worker.text
    rebinding = httpx.get(f"{pg_stack.dagster_url}/dagster/server_info", headers={"Host": "evil.example"}, timeout=30)
    assert rebinding.status_code == 400


def boot_processes(boot_id: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(BOOT_ID_ENV) == boot_id:
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_sigkill_mid_run_then_restart_on_an_empty_disk_loses_nothing(pg_stack, postgres):
    with pg_stack.operator() as operator:
        before = [run for run in operator.runs(source_id=MERGED_SOURCE, limit=50) if run["status"] == "succeeded"]
        if not before:  # history to look for after the restart
            before = list(operator.wait_for_runs([operator.request_run(MERGED_SOURCE)], timeout=300).values())
        assert before and before[0]["status"] == "succeeded", before
        run_id = operator.request_run(MERGED_SOURCE, idempotency_key="crash-1")
        dagster_id = poll(lambda: operator.run(run_id).get("dagster_run_id"), 120, 1, "the launch")
        poll(lambda: (pg_stack.dagster_graphql(RUN_STATUS, {"id": dagster_id})["data"]["runOrError"]
                      .get("status") == "STARTED"), 120, 0.2, "the run to start")

        # The container dies: every process of this start of serve, then its disk (DAGSTER_HOME, dlt's pipeline
        # folders, snapshots). The DuckDB file stays: it stands in for BigQuery, which outlives the container.
        serve = pg_stack.supervisor.release("dagster")
        boot_id = psutil.Process(serve.pid).children()[0].environ()[BOOT_ID_ENV]
        killed_at = time.monotonic()
        os.killpg(serve.pid, signal.SIGKILL)
        for process in boot_processes(boot_id):  # run workers Dagster started in sessions of their own
            process.kill()
        serve.wait()
        shutil.rmtree(pg_stack.paths.dagster_home)
        for path in pg_stack.paths.data_dir.iterdir():
            if path.name != "warehouse.duckdb":
                shutil.rmtree(path) if path.is_dir() else path.unlink()

        pg_stack.start_dagster()
        failed = poll(lambda: (run := operator.run(run_id))["status"] == "failed" and run, FAILED_IN_D1_WITHIN, 1,
                      "the interrupted run to be marked failed in D1")
        seconds = time.monotonic() - killed_at
        print(f"\nSIGKILL -> run failed in D1: {seconds:.1f} s")
        assert failed["status"] == "failed"
        assert pg_stack.dagster_graphql(RUN_STATUS, {"id": dagster_id})["data"]["runOrError"]["status"] == "FAILURE"

        # History and schedules survived the lost disk.
        for run in before:
            status = pg_stack.dagster_graphql(RUN_STATUS, {"id": run["dagster_run_id"]})["data"]["runOrError"]
            assert status.get("status") == "SUCCESS", run
        selector = {"repositoryLocationName": "dlt_platform", "repositoryName": "__repository__",
                    "scheduleName": f"{MINUTELY_SOURCE}_schedule"}
        schedule = pg_stack.dagster_graphql(SCHEDULE, {"selector": selector})["data"]["scheduleOrError"]
        assert schedule["scheduleState"]["status"] == "RUNNING" and schedule["scheduleState"]["ticks"], schedule

        retry = operator.retry_run(run_id)
        retried = operator.wait_for_runs([retry["run_id"]], timeout=300)[retry["run_id"]]
    assert retried["status"] == "succeeded", retried
    rows, keys = warehouse_rows(pg_stack, "orders_kv")
    seeded = len(sample_namespaces(dt.datetime.now(dt.timezone.utc).date())["ORDERS_KV"])
    assert rows == keys == seeded, f"{rows} rows for {keys} keys after the retry ({seeded} seeded)"
    # dlt keeps its state in the destination; the pipeline folder on the emptied disk was rebuilt from it.
    with read_connection(pg_stack.paths.data_dir / "warehouse.duckdb") as connection:
        states = connection.execute("select count(*) from source_cloudflare._dlt_pipeline_state "
                                    "where pipeline_name = ?", [MERGED_SOURCE]).fetchone()[0]
    assert states >= 2
    assert (pg_stack.paths.data_dir / "pipelines" / MERGED_SOURCE).is_dir()
