"""Run containers under load: N sources at once against a slow API, and launch -> STARTED latency.

  .venv/bin/python -m dlt_platform_tests.bench.parallel_runs [--sources 12] [--pages 10] [--latency-runs 5]

1. A slow REST API on loopback (every page waits 300 ms, 100 items a page, Link-header pagination) and N rest_api
   sources on it (no secrets). With the local stack as `dlt-platform up` starts it (every run a process of the
   run-container host), one source's run alone, then N runs requested at once: wall time of each, the ratio, and
   how many run containers overlapped (their processes, sampled every 0.2 s). Dagster's max_concurrent_runs
   (dagster.yaml) caps how many run at once.
2. Launch -> STARTED (Dagster's RunStartingEvent to RunStartEvent) of a small source, median of --latency-runs,
   through run containers and through Dagster's default launcher (run workers as Dagster's children).
Each stack is its own, in a temporary folder, on free ports.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil

from dlt_platform.local.loopback import JSONHandler, LoopbackServer, free_port
from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform.source_types.rest_api.local_api import SAMPLE_API_PORT
from dlt_platform_tests.bench.stack_run import dagster_event_times

PAGE_SECONDS = 0.3
PAGE_SIZE = 100


class SlowApiHandler(JSONHandler):
    """GET /items?page=N: PAGE_SIZE items after PAGE_SECONDS, a Link to the next page until the owner's page count."""

    def do_GET(self) -> None:
        pages = self.server.owner  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        if path != "/items":
            self.send_body(404, {"error": "not found"})
            return
        page = int(dict(part.split("=", 1) for part in query.split("&") if "=" in part).get("page", "1"))
        time.sleep(PAGE_SECONDS)
        data = orjson.dumps([{"id": (page - 1) * PAGE_SIZE + n, "page": page} for n in range(PAGE_SIZE)])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if page < pages:
            self.send_header("Link", f'<http://{self.headers.get("Host")}/items?page={page + 1}>; rel="next"')
        self.end_headers()
        self.wfile.write(data)


def slow_definition(source_id: str, api_url: str) -> dict:
    return {"source_id": source_id, "source_type": "rest_api", "enabled": True,
            "destination": {"type": "bigquery", "dataset": f"source_{source_id}", "write_disposition": "replace"},
            "extract": {"client": {"base_url": api_url, "paginator": {"type": "header_link"}},
                        "resources": [{"name": "items", "endpoint": {"path": "items"}}]}}


def new_stack(root: Path, run_containers: bool, slow_api_host: str) -> LocalStack:
    # The sample API's host stays allowed (the sample source names it) beside the slow API's.
    allowed_host = f"127.0.0.1:{SAMPLE_API_PORT},{slow_api_host}"
    return LocalStack(paths=StackPaths(state_dir=root / "state", data_dir=root / "data"),
                      worker_port=free_port(), dagster_port=free_port(), run_container_host_port=free_port(),
                      run_containers=run_containers,
                      extra_worker_vars={"DLT_PLATFORM_ALLOW_PRIVATE_HOSTS": allowed_host},
                      extra_dagster_env={"DLT_PLATFORM_ALLOW_PRIVATE_HOSTS": allowed_host})


def run_containers_alive(stack: LocalStack) -> int:
    try:
        return len(psutil.Process(stack.processes["run_containers"].pid).children())
    except (KeyError, psutil.NoSuchProcess):
        return 0


def timed_runs(stack: LocalStack, client, source_ids: list[str]) -> tuple[float, int]:
    """Wall seconds from the requests to the last run's end, and the most run containers seen at once."""
    most, done = 0, threading.Event()

    def sample() -> None:
        nonlocal most
        while not done.wait(0.2):
            most = max(most, run_containers_alive(stack))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    run_ids = [client.request_run(source_id) for source_id in source_ids]
    runs = client.wait_for_runs(run_ids, timeout=1800, poll=0.5)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    failed = {run_id: run["status"] for run_id, run in runs.items() if run["status"] != "succeeded"}
    if failed:
        raise RuntimeError(f"runs did not succeed: {failed}")
    return wall, most


def launch_to_started(stack: LocalStack, client, source_id: str, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        run_id = client.request_run(source_id)
        run = client.wait_for_runs([run_id], timeout=600, poll=0.2)[run_id]
        if run["status"] != "succeeded":
            raise RuntimeError(f"run {run_id} ended {run['status']}")
        times = dagster_event_times(stack, client.run(run_id)["dagster_run_id"])
        seconds.append(times["STARTED"] - times["starting"])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sources", type=int, default=12)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--latency-runs", type=int, default=5)
    args = parser.parse_args()
    with LoopbackServer(SlowApiHandler, args.pages) as api, tempfile.TemporaryDirectory() as root:
        host = api.url.removeprefix("http://")
        latency: dict[str, list[float]] = {}
        for run_containers in (True, False):
            label = "run containers" if run_containers else "default launcher"
            stack = new_stack(Path(root) / label.replace(" ", "_"), run_containers, host)
            try:
                stack.start(say=lambda text: print(text, flush=True))
                with stack.operator() as client:
                    ids = [f"slow_api_{n}" for n in range(args.sources)]
                    for source_id in ids:
                        client.create_source(slow_definition(source_id, api.url))
                    client.wait_for_runs([client.request_run(ids[0])], timeout=600)  # first run creates tables
                    if run_containers:
                        one, _ = timed_runs(stack, client, ids[:1])
                        many, overlap = timed_runs(stack, client, ids)
                        print(f"{args.sources} sources x {args.pages} pages of {PAGE_SECONDS * 1000:.0f} ms, at "
                              f"once: {many:.1f} s wall vs {one:.1f} s for one source ({many / one:.1f}x; "
                              f"sequential would be {args.sources}x); at most {overlap} run containers at once",
                              flush=True)
                    latency[label] = launch_to_started(stack, client, ids[0], args.latency_runs)
                    print(f"{label}: launch -> STARTED median {statistics.median(latency[label]):.2f} s "
                          f"({', '.join(f'{value:.2f}' for value in latency[label])})", flush=True)
            finally:
                stack.stop_all()


if __name__ == "__main__":
    main()
