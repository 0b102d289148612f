"""Run-start figures of the local stack.

  .venv/bin/python -m dlt_platform_tests.bench.stack_run [--runs 5] [--skip-code-location]

1. The code location: loading 100 generated source definitions as a code server does (build, resolve every job,
   snapshot; in a fresh process, its imports apart), and `dagster definitions validate` on the sample sources
   and on the 100.
2. The whole stack (wrangler dev + Dagster), then `--runs` runs requested one after another through
   `POST /sources/:id/runs`. For each run, seconds after the POST (wall clock of this machine, which every part
   shares) of: the ledger's queued / launching (the queue consumer took it) / launched (Dagster accepted the
   launch); Dagster's own run events (dequeued by the run coordinator, run worker starting, STARTED, step start,
   SUCCESS); when the ledger in D1 first showed `running` and a terminal status (polled every 0.1 s through the
   operator API). Medians over the runs, and the memory of the running stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dlt_platform.local.loopback import free_port
from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform.settings import PROJECT_ROOT

LEDGER_STAGES = ("queued", "launching", "launched")
# Dagster's run events, by their GraphQL type, in the order a run passes them.
DAGSTER_STAGES = {"RunDequeuedEvent": "dequeued", "RunStartingEvent": "starting", "RunStartEvent": "STARTED",
                  "ExecutionStepStartEvent": "step start", "RunSuccessEvent": "SUCCESS"}
RUN_EVENTS_QUERY = """query RunEvents($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { timestamp } } }
  }
}"""
CODE_LOCATION_SCRIPT = """
import json, time
started = time.perf_counter()
from dagster._core.remote_representation.external_data import RepositorySnap
from dlt_platform.config import parse_sources_document
from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform.settings import Settings
imported, cpu = time.perf_counter(), time.process_time()
definitions = parse_sources_document(json.load(open({path!r})))
repository = build_platform_definitions(definitions, Settings.from_env()).get_repository_def()
repository.load_all_definitions()  # every job resolved, as a code server does before it answers
RepositorySnap.from_def(repository)  # what the code server hands the webserver and the daemon
assets = len(repository.asset_graph.materializable_asset_keys)
print(json.dumps({{"imports": imported - started, "load": time.perf_counter() - imported,
                  "load_cpu": time.process_time() - cpu, "assets": assets}}))
"""



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


def median_line(label: str, values: list[float]) -> str:
    return f"{label:<34} median {statistics.median(values):5.2f} s   (min {min(values):.2f}, max {max(values):.2f})"


# --- the code location -----------------------------------------------------------------------------------------

def hundred_sources_document() -> dict:
    from dlt_platform_tests.orchestration.conftest import generated_sources_document
    return generated_sources_document(100)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_validate(config: Path, dagster_home: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `dagster definitions validate` (CPU time hardly depends on the machine's load)."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DLT_PLATFORM_CONFIG": str(config)}
    for name in ("DLT_ORCHESTRATOR_URL", "DLT_INTERNAL_TOKEN"):
        env.pop(name, None)  # the definitions come from the file
    cpu = children_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
                             "-w", str(PROJECT_ROOT / "workspace.yaml")], env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"dagster definitions validate failed:\n{result.stderr[-3000:]}")
    return seconds, children_cpu_seconds() - cpu


def code_location_figures(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        hundred = Path(root) / "sources_100.json"
        hundred.write_text(json.dumps(hundred_sources_document()))
        dagster_home = Path(root) / "dagster"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
        env = {**os.environ, "DLT_PLATFORM_DATA_DIR": str(Path(root) / "data")}
        loads, cpus, imports = [], [], []
        for _ in range(repeats):
            output = subprocess.run([sys.executable, "-c", CODE_LOCATION_SCRIPT.format(path=str(hundred))], env=env,
                                    cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
            figures = json.loads(output.strip().splitlines()[-1])
            assert figures["assets"] == 100, figures
            loads.append(figures["load"])
            cpus.append(figures["load_cpu"])
            imports.append(figures["imports"])
        print(median_line("100 sources: load (jobs, snapshot)", loads))
        print(median_line("  the same in CPU time", cpus))
        print(median_line("  imports before it", imports))
        for label, config in (("3 sources", PROJECT_ROOT / "config" / "sources.json"), ("100 sources", hundred)):
            walls, cpus = zip(*(time_validate(config, dagster_home) for _ in range(repeats)))
            print(median_line(f"definitions validate ({label})", list(walls)))
            print(median_line("  the same in CPU time", list(cpus)), flush=True)


# --- runs through the Worker -----------------------------------------------------------------------------------

def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def dagster_event_times(stack: LocalStack, dagster_run_id: str) -> dict[str, float]:
    data = stack.dagster_graphql(RUN_EVENTS_QUERY, {"runId": dagster_run_id})["data"]["logsForRun"]
    times: dict[str, float] = {}
    for event in data.get("events", []):
        stage = DAGSTER_STAGES.get(event["__typename"])
        if stage and stage not in times:
            times[stage] = int(event["timestamp"]) / 1000
    return times


def measure_run(stack: LocalStack, client, source_id: str) -> dict[str, float]:
    """Seconds after the POST at which the run reached each stage."""
    seen: dict[str, float] = {}

    def on_update(run: dict) -> None:
        if run["status"] == "running":
            seen.setdefault("D1 running", time.time())
        elif run["status"] in ("succeeded", "failed", "canceled", "dead_lettered"):
            seen.setdefault("D1 ended", time.time())

    posted = time.time()
    run_id = client.request_run(source_id)
    run = client.wait_for_runs([run_id], timeout=600, poll=0.1, on_update=on_update)[run_id]
    if run["status"] != "succeeded":
        raise RuntimeError(f"run {run_id} ended {run['status']}: {run.get('message')}")
    run = client.run(run_id)
    stages: dict[str, float] = {}
    for event in run["events"]:
        if event["status"] in LEDGER_STAGES:
            stages.setdefault(event["status"], parse_time(event["at"]))
    stages.update(dagster_event_times(stack, run["dagster_run_id"]))
    stages.update(seen)
    figures = {stage: moment - posted for stage, moment in stages.items()}
    figures["D1 running after STARTED"] = stages["D1 running"] - stages["STARTED"] if "D1 running" in stages else None
    figures["rows"] = sum(run["tables"].values())
    return figures


def run_figures(runs: int, source_id: str) -> int:
    with tempfile.TemporaryDirectory() as root:
        stack = LocalStack(paths=StackPaths(state_dir=Path(root) / "state", data_dir=Path(root) / "data"),
                           worker_port=free_port(), dagster_port=free_port())
        try:
            started = time.perf_counter()
            stack.start(say=lambda text: print(text, flush=True))
            print(f"stack start-up: {time.perf_counter() - started:.1f} s", flush=True)
            results = []
            with stack.operator() as client:
                measure_run(stack, client, source_id)  # the first run also creates the tables: not counted
                for _ in range(runs):
                    results.append(measure_run(stack, client, source_id))
                    print("  " + ", ".join(f"{stage} {value:.2f}" for stage, value in results[-1].items()
                                           if value is not None and stage != "rows"), flush=True)
            print(f"{runs} runs of {source_id} ({results[0]['rows']} rows each), seconds after POST /sources/:id/runs:")
            stages = [*LEDGER_STAGES, *DAGSTER_STAGES.values(), "D1 running", "D1 ended", "D1 running after STARTED"]
            for stage in stages:
                values = [result[stage] for result in results if result.get(stage) is not None]
                if values:
                    print("  " + median_line(stage, values))
            worker = tree_rss_mb(stack.processes["worker"].pid)
            dagster = tree_rss_mb(stack.processes["dagster"].pid)
            print(f"memory of the running stack (RSS): Worker/wrangler {worker:.0f} MB, Dagster {dagster:.0f} MB, "
                  f"total {worker + dagster:.0f} MB")
        finally:
            stack.stop_all()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source-id", default="cloudflare_kv_orders")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each code-location figure")
    parser.add_argument("--skip-code-location", action="store_true")
    parser.add_argument("--skip-runs", action="store_true")
    args = parser.parse_args()
    print(f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    if not args.skip_code_location:
        code_location_figures(args.repeats)
    if not args.skip_runs:
        return run_figures(args.runs, args.source_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
