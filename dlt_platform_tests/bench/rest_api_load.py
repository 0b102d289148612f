"""Load benchmark of a rest_api source: N issues from the loopback sample API, 100 a page by Link headers,
bearer auth, raw snapshot kept, into DuckDB through the platform's path (`run_load`), each mode in a fresh process
so its CPU time and peak RSS are the load's own. Modes, side by side in one run:

  platform:   the production path: child requests in flight together, in dlt's extract workers (EXTRACT_WORKERS).
  sequential: the same with one extract worker: child requests one at a time, as before issue 24.

Prints wall time, CPU time (user+sys), dlt's steps, requests the API answered, rows and peak RSS per mode, and
the speed-up. `--comments 1` adds a child resource (a request per issue); `--delay 0.02` makes the API answer each
request in 20 ms, like a remote API. Run:

    .venv/bin/python -m dlt_platform_tests.bench.rest_api_load --items 10000
    .venv/bin/python -m dlt_platform_tests.bench.rest_api_load --items 2000 --comments 1 --delay 0.02
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

TOKEN = "bench-token"
MODES = ("sequential", "platform")


def cpu_seconds() -> float:
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def run_load_process(mode: str, base_url: str, data_dir: str, with_comments: bool, result) -> None:
    from dlt_platform.config import parse_definition
    from dlt_platform.loads import build_pipeline, run_load
    from dlt_platform.settings import Settings

    os.environ["BENCH_API_TOKEN"] = TOKEN
    # The loopback API's token listed for sources and bound to it, and its address allowed, as a deployment would.
    host = base_url.removeprefix("http://")
    os.environ["DLT_SOURCE_SECRETS"] = f'{{"BENCH_API_TOKEN": ["{host}"]}}'
    os.environ["DLT_PLATFORM_ALLOW_PRIVATE_HOSTS"] = host
    if mode == "sequential":  # dlt's one extract worker: a parallelized resource's requests one at a time
        os.environ["EXTRACT__WORKERS"] = "1"
    resources = [{"name": "issues", "endpoint": {"path": "issues", "params": {"per_page": 100}}}]
    if with_comments:
        resources.append(
            {
                "name": "issue_comments",
                "include_from_parent": ["id"],
                "endpoint": {"path": "issues/{resources.issues.number}/comments"},
            }
        )
    definition = parse_definition(
        {
            "source_id": "bench_issues",
            "source_type": "rest_api",
            "destination": {"type": "duckdb", "dataset": "bench", "write_disposition": "replace"},
            "extract": {
                "client": {
                    "base_url": base_url,
                    "auth": {"type": "bearer", "token": {"env": "BENCH_API_TOKEN"}},
                    "paginator": {"type": "header_link"},
                },
                "resource_defaults": {"primary_key": "id"},
                "resources": resources,
            },
            "staging": {"raw_snapshot": True, "r2_prefix": "rest_api/bench"},
        }
    )
    settings = Settings(data_dir=Path(data_dir), destination_override="duckdb")
    started, cpu_started = time.perf_counter(), cpu_seconds()
    rows = run_load(definition, settings).rows_by_table
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    trace = build_pipeline(definition, settings).last_trace
    steps = {step.step: round((step.finished_at - step.started_at).total_seconds(), 2) for step in trace.steps}
    result.put(
        {
            "seconds": seconds,
            "cpu": cpu,
            "rows": rows,
            "steps": steps,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=0, help="comments per issue (a child request each)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds the API takes to answer each request")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = parser.parse_args()

    from dlt_platform.source_types.rest_api.local_api import SampleApiState, serve_sample_api

    state = SampleApiState(
        TOKEN, "unused", issues=args.items, comments_per_issue=args.comments, answer_delay=args.delay
    )
    server = serve_sample_api(state)
    outcomes = {}
    try:
        context = multiprocessing.get_context("spawn")
        for mode in args.modes.split(","):
            requests_before = len(state.log)
            result = context.Queue()
            with tempfile.TemporaryDirectory() as data_dir:
                process = context.Process(
                    target=run_load_process, args=(mode, server.url, data_dir, args.comments > 0, result)
                )
                process.start()
                process.join()
                if process.exitcode != 0:
                    raise SystemExit(f"{mode}: the load's process failed (exit code {process.exitcode})")
                outcomes[mode] = outcome = result.get()
            print(
                f"{mode:>10}: {args.items} issues ({args.comments} comments each, answers in {args.delay * 1000:.0f} "
                f"ms): {outcome['seconds']:.1f} s, CPU {outcome['cpu']:.1f} s, {len(state.log) - requests_before} "
                f"requests, peak RSS {outcome['peak_rss_mb']:.0f} MB, rows {outcome['rows']}, "
                f"dlt steps {outcome['steps']}",
                flush=True,
            )
    finally:
        server.stop()
    if {"sequential", "platform"} <= outcomes.keys():
        before, after = outcomes["sequential"], outcomes["platform"]
        print(
            f"platform vs sequential: {before['seconds'] / after['seconds']:.1f}x wall, "
            f"{before['cpu'] / after['cpu']:.1f}x CPU; load average {os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
