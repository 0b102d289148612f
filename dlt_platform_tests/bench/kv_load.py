"""Benchmark: N order-like KV records served over loopback, loaded into DuckDB two ways, in fresh processes.

  platform: the production code path (dlt_platform.loads.run_load: REST transport, row shaping, parquet).
  stock:    the same records and row shaping through dlt with its defaults (jsonl load files).

Prints wall time, rows/s and peak RSS of each, and the speed-up. Run:
  .venv/bin/python -m dlt_platform_tests.bench.kv_load --records 100000
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


def run_mode(mode: str, base_url: str, data_dir: str, result) -> None:
    from dlt_platform.settings import Settings

    settings = Settings(data_dir=Path(data_dir), destination_override="duckdb", cloudflare_api_base_url=base_url,
                        cloudflare_account_id=ACCOUNT, cloudflare_api_token=TOKEN)
    started = time.perf_counter()
    if mode == "platform":
        from dlt_platform.loads import run_load

        rows = run_load(definition(), settings).rows_by_table
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
    result.put({"mode": mode, "seconds": seconds, "rows": rows, "peak_rss_mb": peak_kib / 1024})


def measure(mode: str, base_url: str) -> dict:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    with tempfile.TemporaryDirectory() as data_dir:
        process = context.Process(target=run_mode, args=(mode, base_url, data_dir, result))
        process.start()
        outcome = result.get()
        process.join()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--modes", default="stock,platform")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(args.records, ready, stop), daemon=True)
    server.start()
    base_url = ready.get(timeout=600)
    results = {}
    try:
        for mode in args.modes.split(","):
            results[mode] = measure(mode, base_url)
            r = results[mode]
            print(f"{mode:9s} {args.records:>8d} records  {r['seconds']:7.1f} s  "
                  f"{args.records / r['seconds']:>9.0f} records/s  peak RSS {r['peak_rss_mb']:7.0f} MB  rows {r['rows']}",
                  flush=True)
    finally:
        stop.set()
        server.join(timeout=10)
    if {"stock", "platform"} <= set(results):
        speedup = results["stock"]["seconds"] / results["platform"]["seconds"]
        print(f"speed-up of the platform path over stock dlt defaults: {speedup:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
