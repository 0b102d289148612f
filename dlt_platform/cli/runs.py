"""Runs requested through the orchestrator's operator API, as `up` and `verify-deployment` follow and print them."""

from __future__ import annotations

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dlt_platform.cli.output import console, print_listing, say
from dlt_platform.operator_client import OperatorClient


def follow_runs(client: OperatorClient, run_ids: list[str], timeout: float) -> dict[str, dict]:
    """Wait for the runs to end with one live status line each; returns each run's last state."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        tasks = {run_id: progress.add_task(f"{run_id}: queued", total=None) for run_id in run_ids}

        def show(run: dict) -> None:
            rows = f" ({run['rows_loaded']} rows)" if run.get("rows_loaded") is not None else ""
            progress.update(tasks[run["run_id"]], description=f"{run['source_id']}: {run['status']}{rows}")

        return client.wait_for_runs(run_ids, timeout=timeout, on_update=show)


def print_runs(runs: list[dict], as_json: bool = False) -> None:
    rows = [
        {
            "source": run["source_id"],
            "run": run["run_id"],
            "status": run["status"],
            "rows per table": ", ".join(f"{name} {count}" for name, count in sorted((run.get("tables") or {}).items()))
            or "-",
            "trigger": run["trigger"],
        }
        for run in runs
    ]
    print_listing(["source", "run", "status", "rows per table", "trigger"], rows, as_json, document=runs)
    if as_json:
        return
    # Why a run did not succeed, one line each under the table (the ledger's message: the run's root cause).
    for run in runs:
        if run["status"] != "succeeded" and run.get("message"):
            say(f"{run['source_id']} {run['run_id']} {run['status']}: {run['message']}")
