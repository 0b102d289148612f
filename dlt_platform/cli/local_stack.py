"""Run the platform on this machine: `up` (Worker, Dagster and a run of every enabled source, offline) and `serve`
(Dagster as the container runs it)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dlt_platform.cli.app import (
    LOCAL_STACK,
    StateDirOption,
    UsageError,
    app,
    one_line_errors,
    settings,
)
from dlt_platform.cli.output import say
from dlt_platform.cli.runs import follow_runs, print_runs
from dlt_platform.local.stack import DEFAULT_STATE_DIR, LocalStack, StackPaths
from dlt_platform.source_types.rest_api.local_api import SAMPLE_API_PORT


@app.command(rich_help_panel=LOCAL_STACK)
def up(
    once: Annotated[bool, typer.Option(help="Stop the stack after the summary instead of waiting for Ctrl-C.")] = False,
    worker_port: Annotated[int, typer.Option(help="Port of wrangler dev.")] = 8787,
    dagster_port: Annotated[int, typer.Option(help="Port of the Dagster webserver.")] = 3000,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the runs.")] = 900,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    warehouse: Annotated[
        str,
        typer.Option(
            help="duckdb (a local file) or bigquery (the BigQuery emulator, the production destination offline)."
        ),
    ] = "duckdb",
    emulator_port: Annotated[int, typer.Option(help="Port of the BigQuery emulator (--warehouse bigquery).")] = 9050,
    sample_api_port: Annotated[
        int, typer.Option(help="Port of the sample REST API; the sample sources that read it follow.")
    ] = SAMPLE_API_PORT,
) -> None:
    """Run the whole platform offline: Worker (wrangler dev), Dagster, a run of every enabled source."""
    with one_line_errors():
        config = settings()
        if warehouse not in ("duckdb", "bigquery"):
            raise UsageError(f"--warehouse: expected duckdb or bigquery, got '{warehouse}'")
        stack = LocalStack(
            paths=StackPaths(state_dir=state_dir, data_dir=config.data_dir),
            worker_port=worker_port,
            dagster_port=dagster_port,
            config_path=config.config_path,
            warehouse=warehouse,
            emulator_port=emulator_port,
            sample_api_port=sample_api_port,
        )
        stack.stop_all_on_sigterm()
        try:
            stack.start(say=say)
            enabled = [d.source_id for d in config.load_sources() if d.enabled]
            with stack.operator() as client:
                runs = follow_runs(client, [client.request_run(source_id) for source_id in enabled], timeout)
            print_runs(list(runs.values()))
            say(f"Dagster UI:  {stack.dagster_url}/dagster")
            say(f"Admin page:  {stack.worker_url}/admin?token=<DLT_OPERATOR_TOKEN from {stack.paths.worker_env}>")
            where = (
                f"BigQuery emulator {stack.emulator.url} (project {stack.emulator.project_id})"
                if warehouse == "bigquery"
                else config.data_dir / "warehouse.duckdb"
            )
            say(f"Warehouse:   {where}")
            failed = [run for run in runs.values() if run["status"] != "succeeded"]
            if not once and stack.processes:
                say("The stack keeps running; Ctrl-C stops it.")
                _wait_for_interrupt()
            if failed:
                raise typer.Exit(1)
        finally:
            stack.stop_all()


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        say("stopping")


@app.command(rich_help_panel=LOCAL_STACK)
def serve(
    host: Annotated[str, typer.Option(help="Interface the UI binds (the container passes 0.0.0.0).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the Dagster webserver (UI under /dagster).")] = 3000,
) -> None:
    """Run Dagster (code server, webserver + daemon) as the container does: supervised, stopped cleanly by SIGTERM."""
    from dlt_platform.serve import serve as run_serve

    with one_line_errors():  # a bad DAGSTER_PG_URL is one line naming it, not a traceback
        code = run_serve(host, port)
    raise typer.Exit(code)
