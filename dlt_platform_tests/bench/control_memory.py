"""Memory of the control processes (Dagster webserver, daemon, code server) and of run containers, to size both.

  .venv/bin/python -m dlt_platform_tests.bench.control_memory [--samples-after 20]

The local stack as `dlt-platform up` starts it (on free ports, in a temporary folder, every run a process of the
run-container host), then a run of every enabled sample source requested at once, as `up --once` does. Every
0.5 s it sums the RSS of the `dlt-platform serve` process tree (the control container's processes: serve, webserver,
daemon and the code servers they start) and of each run process (a run container: the entrypoint, then Dagster's
run worker). It prints the control tree's RSS once Dagster answers, its peak while the runs go and after them, and
the largest run process's peak. RSS summed over processes counts shared pages once per process: an upper bound;
the sum of USS (pages private to each process, read at the end) is a lower bound of what the container holds.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil

from dlt_platform.local.loopback import free_port
from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform.settings import Settings

MB = 1024 * 1024


def tree_rss(pid: int) -> tuple[float, int]:
    """(RSS in MB of `pid` and its descendants, how many processes)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / MB, len(processes)


def tree_breakdown(pid: int) -> list[tuple[str, float, float]]:
    """(command, RSS MB, USS MB) of `pid` and each descendant."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    rows = []
    for process in processes:
        try:
            memory = process.memory_full_info()
            command = " ".join(part.rsplit("/", 1)[-1] for part in process.cmdline()[:4])
        except psutil.NoSuchProcess:
            continue
        rows.append((command[:90], memory.rss / MB, memory.uss / MB))
    return rows


def run_process_rss(host_pid: int) -> dict[int, float]:
    """RSS in MB of each run (a direct child of the run-container host, with its own children)."""
    try:
        runs = psutil.Process(host_pid).children()
    except psutil.NoSuchProcess:
        return {}
    return {run.pid: tree_rss(run.pid)[0] for run in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples-after", type=int, default=20, help="samples (0.5 s apart) after the runs end")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    settings = Settings.from_env()
    enabled = [definition.source_id for definition in settings.load_sources() if definition.enabled]
    with tempfile.TemporaryDirectory() as root:
        stack = LocalStack(
            paths=StackPaths(state_dir=Path(root) / "state", data_dir=Path(root) / "data"),
            worker_port=free_port(),
            dagster_port=free_port(),
            run_container_host_port=free_port(),
            sample_api_port=free_port(),
        )
        try:
            stack.start(say=lambda text: print(text, flush=True))
            control_pid = stack.processes["dagster"].pid
            host_pid = stack.processes["run_containers"].pid
            at_start, processes = tree_rss(control_pid)
            control_peak, run_peaks, done = at_start, {}, threading.Event()

            def sample() -> None:
                nonlocal control_peak
                while not done.wait(0.5):
                    control_peak = max(control_peak, tree_rss(control_pid)[0])
                    for pid, rss in run_process_rss(host_pid).items():
                        run_peaks[pid] = max(run_peaks.get(pid, 0.0), rss)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            with stack.operator() as client:
                run_ids = [client.request_run(source_id) for source_id in enabled]
                runs = client.wait_for_runs(run_ids, timeout=args.timeout, poll=0.5)
            during = control_peak
            after = []
            for _ in range(args.samples_after):
                time.sleep(0.5)
                after.append(tree_rss(control_pid)[0])
            done.set()
            sampler.join()
            statuses = sorted(run["status"] for run in runs.values())
            print(f"{len(enabled)} sample sources at once: {', '.join(statuses)}")
            print(f"control processes (serve tree, {processes} processes): {at_start:.0f} MB RSS once Dagster "
                  f"answers, peak {during:.0f} MB while the runs went, {max(after):.0f} MB after them")
            if run_peaks:
                ordered = sorted(run_peaks.values())
                print(f"run processes: {len(ordered)} seen, peak RSS {ordered[0]:.0f}-{ordered[-1]:.0f} MB "
                      f"(median {ordered[len(ordered) // 2]:.0f} MB)")
            rows = tree_breakdown(control_pid)
            for command, rss, uss in rows:
                print(f"  {rss:6.0f} MB RSS {uss:6.0f} MB USS  {command}")
            print(f"control processes after the runs: {sum(row[1] for row in rows):.0f} MB RSS summed, "
                  f"{sum(row[2] for row in rows):.0f} MB USS summed")
            print(f"load average: {' '.join(f'{value:.1f}' for value in psutil.getloadavg())}")
        finally:
            stack.stop_all()


if __name__ == "__main__":
    main()
