"""Figures of the local stack: start-up time, time from `POST /sources/:id/runs` to the Dagster run starting and
to success (from the run's events in the ledger), and the memory of the running stack.

  .venv/bin/python -m dlt_platform_tests.bench.stack_run [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dlt_platform.local.stack import LocalStack, StackPaths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def event_time(run: dict, status: str) -> dt.datetime:
    return dt.datetime.fromisoformat(next(e["at"] for e in run["events"] if e["status"] == status))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source-id", default="cloudflare_kv_orders")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        stack = LocalStack(paths=StackPaths(state_dir=Path(root) / "state", data_dir=Path(root) / "data"),
                           worker_port=free_port(), dagster_port=free_port())
        try:
            started = time.perf_counter()
            stack.start(say=lambda text: print(text, flush=True))
            print(f"stack start-up: {time.perf_counter() - started:.1f} s")
            to_running, to_success = [], []
            with stack.operator() as client:
                for _ in range(args.runs):
                    run_id = client.request_run(args.source_id)
                    client.wait_for_runs([run_id], timeout=600, poll=0.25)
                    run = client.run(run_id)
                    if run["status"] != "succeeded":
                        print(f"run {run_id} ended {run['status']}: {run.get('message')}")
                        return 1
                    queued = event_time(run, "queued")
                    to_running.append((event_time(run, "running") - queued).total_seconds())
                    to_success.append((event_time(run, "succeeded") - queued).total_seconds())
                    print(f"{run_id}: running after {to_running[-1]:.1f} s, succeeded after {to_success[-1]:.1f} s, "
                          f"rows {run['tables']}", flush=True)
            print(f"POST -> Dagster run started: median {statistics.median(to_running):.1f} s; "
                  f"-> succeeded: median {statistics.median(to_success):.1f} s ({args.runs} runs of {args.source_id})")
            worker = tree_rss_mb(stack.processes["worker"].pid)
            dagster = tree_rss_mb(stack.processes["dagster"].pid)
            print(f"memory of the running stack (RSS): Worker/wrangler {worker:.0f} MB, Dagster {dagster:.0f} MB, "
                  f"total {worker + dagster:.0f} MB")
        finally:
            stack.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
