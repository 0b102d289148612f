"""Load benchmark of a rest_api source: N issues from the loopback sample API, 100 a page by Link headers,
bearer auth, into DuckDB through the platform's path (`run_load`), in a fresh process so its peak RSS is the
load's own. Prints wall time, requests the API answered, rows and peak RSS. Run:

    .venv/bin/python -m dlt_platform_tests.bench.rest_api_load --items 10000
    .venv/bin/python -m dlt_platform_tests.bench.rest_api_load --items 10000 --comments 1   # + a child request per issue
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


def run_load_process(base_url: str, data_dir: str, with_comments: bool, result) -> None:
    from dlt_platform.config import parse_definition
    from dlt_platform.loads import build_pipeline, run_load
    from dlt_platform.settings import Settings

    os.environ["BENCH_API_TOKEN"] = TOKEN
    # The loopback API's token listed for sources and bound to it, and its address allowed, as a deployment would.
    host = base_url.removeprefix("http://")
    os.environ["DLT_SOURCE_SECRETS"] = f'{{"BENCH_API_TOKEN": ["{host}"]}}'
    os.environ["DLT_PLATFORM_ALLOW_PRIVATE_HOSTS"] = host
    resources = [{"name": "issues", "endpoint": {"path": "issues", "params": {"per_page": 100}}}]
    if with_comments:
        resources.append({"name": "issue_comments", "include_from_parent": ["id"],
                          "endpoint": {"path": "issues/{resources.issues.number}/comments"}})
    definition = parse_definition({
        "source_id": "bench_issues", "source_type": "rest_api",
        "destination": {"type": "duckdb", "dataset": "bench", "write_disposition": "replace"},
        "extract": {"client": {"base_url": base_url, "auth": {"type": "bearer", "token": {"env": "BENCH_API_TOKEN"}},
                               "paginator": {"type": "header_link"}},
                    "resource_defaults": {"primary_key": "id"}, "resources": resources},
        "staging": {"raw_snapshot": True, "r2_prefix": "rest_api/bench"},
    })
    settings = Settings(data_dir=Path(data_dir), destination_override="duckdb")
    started = time.perf_counter()
    rows = run_load(definition, settings).rows_by_table
    seconds = time.perf_counter() - started
    trace = build_pipeline(definition, settings).last_trace
    steps = {step.step: round((step.finished_at - step.started_at).total_seconds(), 2) for step in trace.steps}
    result.put({"seconds": seconds, "rows": rows, "steps": steps,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=0, help="comments per issue (a child request each)")
    args = parser.parse_args()

    from dlt_platform.source_types.rest_api.local_api import SampleApiState, serve_sample_api

    state = SampleApiState(TOKEN, "unused", issues=args.items, comments_per_issue=args.comments)
    server = serve_sample_api(state)
    try:
        context = multiprocessing.get_context("spawn")
        result = context.Queue()
        with tempfile.TemporaryDirectory() as data_dir:
            process = context.Process(target=run_load_process, args=(server.url, data_dir, args.comments > 0, result))
            process.start()
            outcome = result.get()
            process.join()
    finally:
        server.stop()
    print(f"{args.items} issues ({args.comments} comments each): {outcome['seconds']:.1f} s, {len(state.log)} requests, "
          f"peak RSS {outcome['peak_rss_mb']:.0f} MB, rows {outcome['rows']}, dlt steps {outcome['steps']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
