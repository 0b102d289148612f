"""Benchmark: N KV records served over loopback, loaded into DuckDB several ways, each in a fresh process.

  platform: the production code path (dlt_platform.loads.run_load: REST transport, Arrow shaping, parquet).
  rows:     the same, with every row through dlt's row normalizer (DLT_PLATFORM_KV_SHAPING=rows).
  replay:   the platform path replaying the raw snapshot of a first (untimed) load: processing without HTTP.
  stock:    the same records and row shaping through dlt with its defaults (jsonl load files).

--values orders: order-like values with an `items` list (a child table); vendors: list-free values with a nested
object. Prints wall time, CPU time (user+sys, less noisy on a shared machine), rows/s, peak RSS and requests to
the KV double of each mode (by default stock, platform and replay), the speed-up, then the platform path on
1,000,000 records against this run's figures (--no-million skips it). Run:
  .venv/bin/python -m dlt_platform_tests.bench.kv_load --records 100000
  .venv/bin/python -m dlt_platform_tests.bench.kv_load --records 100000 --modes platform,rows --no-million
  .venv/bin/python -m dlt_platform_tests.bench.kv_load --records 100000 --modes platform --destination bigquery \
      --no-million

--destination bigquery loads the BigQuery emulator (started here, on a free port) instead of DuckDB, and also
prints the time of dlt's load step (the emulator's share) and the emulator's own CPU time and memory;
--destination duckdb,bigquery runs the modes into each and prints the emulator's load beside DuckDB's, its CPU
time less the emulator's own. --write-disposition merge loads with merge (keyed by cf_kv_key), stock dlt too:
  .venv/bin/python -m dlt_platform_tests.bench.kv_load --records 100000 --modes stock,platform \
      --destination duckdb,bigquery --write-disposition merge --no-million
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

from dlt_platform.local.loopback import free_port

ACCOUNT, TOKEN, NAMESPACE = "bench_account", "bench-token", "bench_orders"


def serve(records: int, values: str, ready, stop, requests) -> None:
    from dlt_platform.local import sample_data
    from dlt_platform.source_types.cloudflare_kv.local_api import KVApiServer, KVApiState

    state = KVApiState(ACCOUNT, TOKEN)
    namespace = state.add_namespace(NAMESPACE, "ORDERS_KV")
    entries = sample_data.order_entries(records) if values == "orders" else sample_data.vendor_entries(records)
    for entry in entries:
        namespace.put(entry.key, entry.value, entry.metadata, entry.expiration)
    namespace.keys()
    with KVApiServer(state) as server:
        ready.put(server.base_url)
        while not stop.wait(0.05):
            requests.value = len(state.requests)


def definition(snapshot: bool = False, disposition: str = "replace"):
    from dlt_platform.config import parse_definition

    return parse_definition({
        "source_id": "bench_orders", "source_type": "cloudflare_kv",
        "destination": {"type": "duckdb", "dataset": "bench", "table": "orders_kv", "write_disposition": disposition},
        "extract": {"namespace_id": NAMESPACE, "namespace_title": "ORDERS_KV", "transport": "rest"},
        **({"staging": {"raw_snapshot": True, "r2_prefix": "bench"}} if snapshot else {}),
    })


def cpu_seconds() -> float:
    """CPU time of this process and of the processes it waited for (dlt's normalize workers)."""
    return sum(usage.ru_utime + usage.ru_stime
               for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_mode(mode: str, base_url: str, data_dir: str, result, requests, emulator_url: str | None,
             disposition: str) -> None:
    from dlt_platform.settings import Settings

    # The loopback double has no rate limit; Cloudflare's (1,200 requests per 5 minutes) would pace a real run.
    settings = Settings(data_dir=Path(data_dir), destination_override="bigquery" if emulator_url else "duckdb",
                        cloudflare_api_base_url=base_url, cloudflare_account_id=ACCOUNT, cloudflare_api_token=TOKEN,
                        bigquery_emulator_host=emulator_url, bigquery_project_id="bench-project",
                        cloudflare_requests_per_window=10**9, kv_shaping="rows" if mode == "rows" else "arrow")
    snapshot_url = None
    if mode == "replay":
        from dlt_platform.loads import run_load

        snapshot_url = run_load(definition(snapshot=True), settings).snapshot_url
        time.sleep(0.1)  # the double publishes its request count every 50 ms
    requests_before = requests.value
    started, cpu_started = time.perf_counter(), cpu_seconds()
    load_seconds, steps, load_jobs = None, {}, {}
    if mode in ("platform", "rows", "replay"):
        from dlt_platform.load_request import LoadRequest
        from dlt_platform.loads import build_pipeline, load_jobs_by_table, run_load

        request = LoadRequest(from_snapshot=snapshot_url) if snapshot_url else LoadRequest()
        loaded = run_load(definition(snapshot=mode == "replay", disposition=disposition), settings, request)
        rows = loaded.rows_by_table
        pipeline = build_pipeline(definition(), settings)
        trace = pipeline.last_trace
        # Load jobs per data table (BigQuery allows 1,500 per table per day; a merge adds its staging table's).
        load_jobs = {table: count for table, count in load_jobs_by_table(pipeline, [loaded.load_id]).items()
                     if not table.startswith("_dlt")} if loaded.load_id else {}
        steps = {step.step: (step.finished_at - step.started_at).total_seconds() for step in trace.steps}
        load_seconds = steps.get("load")
    else:
        import dlt

        from dlt_platform.source_types.cloudflare_kv.rows import warehouse_row
        from dlt_platform.source_types.cloudflare_kv.source import open_transport

        source = definition()

        def stock_rows():
            transport = open_transport(source, settings)
            for page in transport.pages(None):
                fetched_at = dt.datetime.now(dt.UTC).isoformat()
                for record in page:
                    yield warehouse_row({**record, "fetched_at": fetched_at}, NAMESPACE, "ORDERS_KV")

        pipeline = dlt.pipeline(pipeline_name="bench_stock", pipelines_dir=f"{data_dir}/pipelines",
                                destination=dlt.destinations.duckdb(credentials=f"{data_dir}/stock.duckdb"),
                                dataset_name="bench")
        keyed = {"primary_key": "cf_kv_key"} if disposition == "merge" else {}
        pipeline.run(stock_rows(), table_name="orders_kv", write_disposition=disposition, **keyed)
        rows = {t: c for t, c in pipeline.last_trace.last_normalize_info.row_counts.items() if not t.startswith("_dlt")}
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.put({"mode": mode, "seconds": seconds, "cpu": cpu, "rows": rows, "peak_rss_mb": peak_kib / 1024,
                "requests_before": requests_before,
                "load_seconds": load_seconds, "steps": steps, "load_jobs": load_jobs})


def measure(mode: str, base_url: str, requests, emulator_url: str | None, disposition: str) -> dict:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    with tempfile.TemporaryDirectory() as data_dir:
        process = context.Process(target=run_mode,
                                  args=(mode, base_url, data_dir, result, requests, emulator_url, disposition))
        process.start()
        outcome = result.get()
        process.join()
    return outcome


def run_modes(records: int, values: str, modes: list[str], destination: str,
              disposition: str = "replace") -> dict[str, dict]:
    """Serves `records` from a fresh double and measures each mode against it; prints a line per mode. Into
    BigQuery, each mode's result also holds the emulator's CPU seconds during it (`emulator_cpu`)."""
    context = multiprocessing.get_context("spawn")
    ready, stop, requests = context.Queue(), context.Event(), context.Value("l", 0)
    server = context.Process(target=serve, args=(records, values, ready, stop, requests), daemon=True)
    server.start()
    base_url = ready.get(timeout=1800)
    results = {}
    emulator = None
    try:
        if destination == "bigquery":
            import psutil

            from dlt_platform.local.bigquery_emulator import BigQueryEmulator


            emulator = BigQueryEmulator(port=free_port(), project_id="bench-project",
                                        log_path=Path(tempfile.gettempdir()) / "bench-bqemulator.log").start()
            emulator_process = psutil.Process(emulator.process.pid)
            cpu_before = emulator_process.cpu_times()
        for mode in modes:
            if emulator is not None:
                emulator_before = emulator_process.cpu_times()
            results[mode] = r = measure(mode, base_url, requests, emulator.url if emulator else None, disposition)
            if emulator is not None:
                emulator_after = emulator_process.cpu_times()
                r["emulator_cpu"] = (emulator_after.user - emulator_before.user
                                     + emulator_after.system - emulator_before.system)
            time.sleep(0.1)  # the double publishes its request count every 50 ms
            r["requests"] = requests.value - r["requests_before"]
            print(f"{mode:9s} {destination:8s} {disposition:7s} {values} {records:>8d} records  {r['seconds']:6.1f} s "
                  f"(CPU {r['cpu']:5.1f} s)  {records / r['seconds']:>7.0f} records/s  peak RSS "
                  f"{r['peak_rss_mb']:5.0f} MB  {r['requests']:>6d} requests  rows {r['rows']}"
                  + (f"  load jobs {r['load_jobs']}" if r["load_jobs"] else ""), flush=True)
            if r["steps"]:
                steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in r["steps"].items() if name != "run")
                print(f"          dlt steps: {steps} (load: the warehouse writing the files)")
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
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--modes", default="stock,platform,replay",
                        help="comma-separated: stock, platform, rows, replay")
    parser.add_argument("--values", choices=["orders", "vendors"], default="orders")
    parser.add_argument("--destination", default="duckdb",
                        help="duckdb, bigquery, or duckdb,bigquery (each, compared)")
    parser.add_argument("--write-disposition", choices=["replace", "merge"], default="replace")
    parser.add_argument("--million", action=argparse.BooleanOptionalAction, default=True,
                        help="then the platform path on 1,000,000 records, compared with this run's figures")
    args = parser.parse_args()
    destinations = args.destination.split(",")
    if not set(destinations) <= {"duckdb", "bigquery"}:
        parser.error("--destination: duckdb, bigquery or duckdb,bigquery")
    modes = args.modes.split(",")
    by_destination = {}
    for destination in destinations:
        # stock dlt is measured into DuckDB only (the baseline of the speed-up)
        wanted = [mode for mode in modes if destination == "duckdb" or mode != "stock"]
        by_destination[destination] = run_modes(args.records, args.values, wanted, destination, args.write_disposition)
    results = by_destination.get("duckdb") or by_destination["bigquery"]
    if "duckdb" in by_destination and "bigquery" in by_destination:
        for mode in set(by_destination["duckdb"]) & set(by_destination["bigquery"]):
            duck, bq = by_destination["duckdb"][mode], by_destination["bigquery"][mode]
            # The loading process's CPU holds none of the emulator's (a process of its own, measured apart).
            wall_less_emulator = bq["seconds"] - bq["emulator_cpu"]
            print(f"{mode}: BigQuery emulator / DuckDB ({args.write_disposition}): {bq['cpu'] / duck['cpu']:.2f}x "
                  f"the loading process's CPU ({bq['cpu']:.1f} s vs {duck['cpu']:.1f} s), "
                  f"{wall_less_emulator / duck['seconds']:.2f}x the wall time less the emulator's CPU "
                  f"({bq['seconds']:.1f} s - {bq['emulator_cpu']:.1f} s vs {duck['seconds']:.1f} s), "
                  f"peak RSS {bq['peak_rss_mb']:.0f} MB vs {duck['peak_rss_mb']:.0f} MB")
    if {"stock", "platform"} <= set(results):
        speedup = results["stock"]["seconds"] / results["platform"]["seconds"]
        cpu_ratio = results["stock"]["cpu"] / results["platform"]["cpu"]
        print(f"speed-up of the platform path over stock dlt defaults ({args.write_disposition}, DuckDB): "
              f"{speedup:.1f}x wall, {cpu_ratio:.1f}x CPU")
    if args.million:
        for destination, destination_results in by_destination.items():
            if "platform" not in destination_results:
                continue
            million = run_modes(1_000_000, args.values, ["platform"], destination, args.write_disposition)["platform"]
            small = destination_results["platform"]
            print(f"{destination}: ", end="")
            print(f"1,000,000 / {args.records:,} records: {million['seconds'] / small['seconds']:.1f}x the wall "
                  f"time, {million['cpu'] / small['cpu']:.1f}x the CPU time, "
                  f"{million['peak_rss_mb'] / small['peak_rss_mb']:.2f}x the peak RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
