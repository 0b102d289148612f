"""Load benchmark of a d1 source beside stock dlt, in one run: N rows of a `users` table from the loopback D1
REST API (real SQLite behind it) into DuckDB, each load in a fresh process so its peak RSS is its own.

- platform: `run_load` of a d1 definition (declared types, keyset pages of 5,000 rows, merge on the key);
- stock dlt: a plain `@dlt.resource` over the same pages (the same SELECTs to the same endpoint, rows turned into
  dicts), dlt's defaults otherwise (append, types inferred).

Prints wall time, requests, rows and peak RSS of each. Run (do not loop it; two cores are shared):

    .venv/bin/python -m dlt_platform_tests.bench.d1_load --rows 100000
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

ACCOUNT, TOKEN, DATABASE_ID = "0123456789abcdef0123456789abcdef", "bench-token", "5e0c1d2a-7b3f-4c6d-8e9f-0a1b2c3d4e5f"
PAGE_ROWS = 5000


def definition():
    from dlt_platform.config import parse_definition

    return parse_definition({
        "source_id": "bench_d1", "source_type": "d1",
        "destination": {"type": "duckdb", "dataset": "bench", "write_disposition": "merge"},
        "extract": {"database_id": DATABASE_ID, "database_name": "APP_DB", "page_rows": PAGE_ROWS,
                    "tables": [{"name": "users", "cursor": "updated_at"}]},
    })


def platform_load(base_url: str, data_dir: str, result) -> None:
    from dlt_platform.loads import run_load
    from dlt_platform.settings import Settings

    settings = Settings(data_dir=Path(data_dir), destination_override="duckdb", cloudflare_api_base_url=base_url,
                        cloudflare_account_id=ACCOUNT, cloudflare_api_token=TOKEN)
    started = time.perf_counter()
    rows = run_load(definition(), settings).rows_by_table
    result.put({"seconds": time.perf_counter() - started, "rows": rows,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def stock_dlt_load(base_url: str, data_dir: str, result) -> None:
    import dlt
    import httpx

    from dlt_platform.source_types.d1.client import PageQuery, page_sql

    columns = ["id", "email", "score", "balance", "active", "signed_up", "avatar", "profile", "updated_at"]

    @dlt.resource(name="users")
    def users():
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
            page = PageQuery(table="users", columns=columns, key=["updated_at", "id"], limit=PAGE_ROWS,
                             hex_columns=["avatar"], cursor="updated_at")
            while True:
                sql, params = page_sql(page)
                body = http.post(f"/accounts/{ACCOUNT}/d1/database/{DATABASE_ID}/raw",
                                 json={"sql": sql, "params": params}).raise_for_status().json()
                results = body["result"][0]["results"]
                rows = [dict(zip(results["columns"], row, strict=True)) for row in results["rows"]]
                yield rows
                if len(rows) < PAGE_ROWS:
                    return
                page = PageQuery(**{**page.__dict__, "after": [rows[-1]["updated_at"], rows[-1]["id"]]})

    pipeline = dlt.pipeline("bench_stock_d1", destination=dlt.destinations.duckdb(f"{data_dir}/stock.duckdb"),
                            dataset_name="bench", pipelines_dir=f"{data_dir}/pipelines")
    started = time.perf_counter()
    info = pipeline.run(users())
    seconds = time.perf_counter() - started
    counts = pipeline.last_trace.last_normalize_info.row_counts
    result.put({"seconds": seconds, "rows": {k: v for k, v in counts.items() if not k.startswith("_dlt")},
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "loads": len(info.loads_ids)})


def in_process(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    process = context.Process(target=target, args=(*args, result))
    process.start()
    outcome = result.get()
    process.join()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    from dlt_platform.source_types.d1.local_api import D1ApiServer, D1ApiState
    from dlt_platform_tests.d1_fixtures import APP_SCHEMA, USER_INSERT, user_row

    with tempfile.TemporaryDirectory() as work:
        state = D1ApiState(ACCOUNT, TOKEN)
        state.add_database(DATABASE_ID, f"{work}/app.sqlite").executescript(APP_SCHEMA)
        # A distinct cursor value per row, as an application's updated_at is (dlt keeps the keys of the rows at the
        # last cursor value to drop them next time: one shared value would make that every row).
        state.executemany(DATABASE_ID, USER_INSERT,
                          (user_row(i, f"2026-01-01T{i // 3_600_000:02d}:{i // 60_000 % 60:02d}:"
                                       f"{i // 1000 % 60:02d}.{i % 1000:03d}Z") for i in range(1, args.rows + 1)))
        with D1ApiServer(state) as server:
            for name, target in (("platform d1", platform_load), ("stock dlt", stock_dlt_load)):
                before = len(state.statements)
                with tempfile.TemporaryDirectory() as data_dir:
                    outcome = in_process(target, server.base_url, data_dir)
                print(f"{name}: {args.rows} rows in {outcome['seconds']:.1f} s "
                      f"({args.rows / outcome['seconds']:,.0f} rows/s), {len(state.statements) - before} requests, "
                      f"peak RSS {outcome['peak_rss_mb']:.0f} MB, rows {outcome['rows']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
