"""Benchmark: N order-like KV records served over loopback, loaded into DuckDB two ways, in fresh processes.

  platform: the production code path (dlt_platform.loads.run_load: REST transport, row shaping, parquet).
  stock:    the same records and row shaping through dlt with its defaults (jsonl load files).

Prints wall time, rows/s and peak RSS of each, and the speed-up. Run:
  .venv/bin/python -m dlt_platform_tests.bench.kv_load --records 100000
  .venv/bin/python -m dlt_platform_tests.bench.kv_load --records 100000 --modes platform --destination bigquery

--destination bigquery loads the BigQuery emulator (started here, on a free port) instead of DuckDB, and also
prints the time of dlt's load step (the emulator's share) and the emulator's own CPU time and memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

ACCOUNT, TOKEN, NAMESPACE = "bench_account", "bench-token", "bench_orders"


def serve(records: int, ready, stop) -> None:
    from dlt_platform.local.kv_api_server import KVApiServer, KVApiState
    from dlt_platform.local.sample_data import order_entries

    state = KVApiState(ACCOUNT, TOKEN)
    namespace = state.add_namespace(NAMESPACE, "ORDERS_KV")
    for entry in order_entries(records):
        namespace.put(entry.key, entry.value, entry.metadata, entry.expiration)
    namespace.keys()
    with KVApiServer(state) as server:
        ready.put(server.base_url)
        stop.wait()


def definition():
    from dlt_platform.config import parse_definition

    return parse_definition({
        "source_id": "bench_orders", "source_type": "cloudflare_kv",
        "destination": {"type": "duckdb", "dataset": "bench", "table": "orders_kv", "write_disposition": "replace"},
        "extract": {"namespace_id": NAMESPACE, "namespace_title": "ORDERS_KV", "transport": "rest"},
    })


def run_mode(mode: str, base_url: str, data_dir: str, result, emulator_url: str | None = None) -> None:
    from dlt_platform.settings import Settings

    settings = Settings(data_dir=Path(data_dir), destination_override="bigquery" if emulator_url else "duckdb",
                        cloudflare_api_base_url=base_url, cloudflare_account_id=ACCOUNT, cloudflare_api_token=TOKEN,
                        bigquery_emulator_host=emulator_url, bigquery_project_id="bench-project")
    started = time.perf_counter()
    load_seconds, steps = None, {}
    if mode == "platform":
        from dlt_platform.loads import build_pipeline, run_load

        rows = run_load(definition(), settings).rows_by_table
        trace = build_pipeline(definition(), settings).last_trace
        steps = {step.step: (step.finished_at - step.started_at).total_seconds() for step in trace.steps}
        load_seconds = steps.get("load")
    else:
        import dlt

        from dlt_platform.sources.cloudflare_kv import open_transport
        from dlt_platform.sources.cloudflare_kv.rows import shape_row

        source = definition()

        def stock_rows():
            transport = open_transport(source, settings)
            for page in transport.pages(None):
                fetched_at = dt.datetime.now(dt.timezone.utc)
                for record in page:
                    yield shape_row(record, NAMESPACE, "ORDERS_KV", fetched_at)

        pipeline = dlt.pipeline(pipeline_name="bench_stock", pipelines_dir=f"{data_dir}/pipelines",
                                destination=dlt.destinations.duckdb(credentials=f"{data_dir}/stock.duckdb"),
                                dataset_name="bench")
        pipeline.run(stock_rows(), table_name="orders_kv", write_disposition="replace")
        rows = {t: c for t, c in pipeline.last_trace.last_normalize_info.row_counts.items() if not t.startswith("_dlt")}
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.put({"mode": mode, "seconds": seconds, "rows": rows, "peak_rss_mb": peak_kib / 1024,
                "load_seconds": load_seconds, "steps": steps})


def measure(mode: str, base_url: str, emulator_url: str | None = None) -> dict:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    with tempfile.TemporaryDirectory() as data_dir:
        process = context.Process(target=run_mode, args=(mode, base_url, data_dir, result, emulator_url))
        process.start()
        outcome = result.get()
        process.join()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--modes", default="stock,platform")
    parser.add_argument("--destination", choices=["duckdb", "bigquery"], default="duckdb")
    args = parser.parse_args()
    if args.destination == "bigquery" and args.modes != "platform":
        parser.error("--destination bigquery measures the platform path only: add --modes platform")
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(args.records, ready, stop), daemon=True)
    server.start()
    base_url = ready.get(timeout=600)
    results = {}
    emulator = None
    try:
        if args.destination == "bigquery":
            import psutil

            from dlt_platform.local.bigquery_emulator import BigQueryEmulator
            from dlt_platform_tests.bigquery_fixtures import free_port

            emulator = BigQueryEmulator(port=free_port(), project_id="bench-project",
                                        log_path=Path(tempfile.gettempdir()) / "bench-bqemulator.log").start()
            emulator_process = psutil.Process(emulator.process.pid)
            cpu_before = emulator_process.cpu_times()
        for mode in args.modes.split(","):
            results[mode] = measure(mode, base_url, emulator.url if emulator else None)
            r = results[mode]
            print(f"{mode:9s} {args.destination:8s} {args.records:>8d} records  {r['seconds']:7.1f} s  "
                  f"{args.records / r['seconds']:>9.0f} records/s  peak RSS {r['peak_rss_mb']:7.0f} MB  rows {r['rows']}",
                  flush=True)
            if r["steps"]:
                print("          dlt steps: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in r["steps"].items()
                                                          if name != "run") + " (load: the warehouse writing the files)")
        if emulator is not None:
            cpu = emulator_process.cpu_times()
            used = (cpu.user - cpu_before.user) + (cpu.system - cpu_before.system)
            print(f"emulator process: {used:.1f} s CPU during the loads, "
                  f"{emulator_process.memory_info().rss / 2**20:.0f} MB RSS after them")
    finally:
        if emulator is not None:
            emulator.stop()
        stop.set()
        server.join(timeout=10)
    if {"stock", "platform"} <= set(results):
        speedup = results["stock"]["seconds"] / results["platform"]["seconds"]
        print(f"speed-up of the platform path over stock dlt defaults: {speedup:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
