"""Load benchmark of Logpush files in R2: N http_requests lines as gzip NDJSON batches in {DATE} folders on an
S3-protocol server on loopback (moto's), loaded into DuckDB twice, each in a fresh process so its peak RSS is the
load's own:

- the platform: an r2_files source with the Logpush preset (`run_load`: whole-file check, timestamps typed);
- stock dlt with its defaults: `filesystem(...) | read_jsonl()` over the same bucket, `pipeline.run`.

Prints wall time, rows, peak RSS and dlt's step times of each. Run:

    .venv/bin/python -m dlt_platform_tests.bench.r2_files_load --lines 100000 --files 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

BUCKET, PREFIX = "bench-logs", "logpush/http_requests"
KEY_ID, SECRET = "bench-key-id", "bench-secret"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def upload_batches(endpoint: str, lines: int, files: int) -> None:
    """Logpush-shaped batches: `<prefix>/{DATE}/<start>_<end>_<n>.log.gz`, unixnano timestamps."""
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )
    s3.create_bucket(Bucket=BUCKET)
    start = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    per_file = -(-lines // files)
    for file in range(files):
        at = start + dt.timedelta(minutes=file)
        numbers = range(file * per_file, min(lines, (file + 1) * per_file))
        records = [
            {
                "RayID": f"{n:016x}",
                "ClientIP": f"198.51.100.{n % 250}",
                "ClientRequestHost": "example.com",
                "ClientRequestMethod": "GET",
                "ClientRequestURI": f"/items/{n}",
                "EdgeResponseStatus": 200,
                "EdgeResponseBytes": 512 + n % 1000,
                "ClientCountry": "de",
                "EdgeStartTimestamp": (at - EPOCH) // dt.timedelta(microseconds=1) * 1000 + n,
                "EdgeEndTimestamp": (at - EPOCH) // dt.timedelta(microseconds=1) * 1000 + n + 5_000_000,
            }
            for n in numbers
        ]
        body = gzip.compress("".join(json.dumps(record) + "\n" for record in records).encode())
        end = at + dt.timedelta(seconds=30)
        s3.put_object(
            Bucket=BUCKET, Key=f"{PREFIX}/{at:%Y%m%d}/{at:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}_{file}.log.gz", Body=body
        )


def platform_load(endpoint: str, data_dir: str, result) -> None:
    from dlt_platform.config import parse_definition
    from dlt_platform.loads import build_pipeline, run_load
    from dlt_platform.settings import Settings

    definition = parse_definition(
        {
            "source_id": "bench_logpush",
            "source_type": "r2_files",
            "destination": {"type": "duckdb", "dataset": "bench", "write_disposition": "append"},
            "extract": {
                "bucket": BUCKET,
                "tables": [
                    {"type": "logpush", "dataset": "http_requests", "prefix": PREFIX, "timestamp_format": "unixnano"}
                ],
            },
        }
    )
    settings = Settings(
        data_dir=Path(data_dir),
        destination_override="duckdb",
        r2_endpoint_url=endpoint,
        r2_access_key_id=KEY_ID,
        r2_secret_access_key=SECRET,
    )
    started = time.perf_counter()
    rows = run_load(definition, settings).rows_by_table
    seconds = time.perf_counter() - started
    report(result, seconds, rows, build_pipeline(definition, settings))


def stock_dlt_load(endpoint: str, data_dir: str, result) -> None:
    import dlt
    from dlt.sources.credentials import AwsCredentials
    from dlt.sources.filesystem import filesystem, read_jsonl

    credentials = AwsCredentials(
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, endpoint_url=endpoint, region_name="us-east-1"
    )
    logs = (
        filesystem(bucket_url=f"s3://{BUCKET}/{PREFIX}", credentials=credentials, file_glob="*/*.log.gz") | read_jsonl()
    ).with_name("http_requests")
    pipeline = dlt.pipeline(
        pipeline_name="bench_stock",
        pipelines_dir=str(Path(data_dir) / "pipelines"),
        destination=dlt.destinations.duckdb(str(Path(data_dir) / "stock.duckdb")),
        dataset_name="bench",
    )
    started = time.perf_counter()
    info = pipeline.run(logs)
    seconds = time.perf_counter() - started
    assert info.loads_ids
    counts = pipeline.last_trace.last_normalize_info.row_counts
    report(result, seconds, {table: n for table, n in counts.items() if not table.startswith("_dlt")}, pipeline)


def report(result, seconds: float, rows: dict, pipeline) -> None:
    steps = {
        step.step: round((step.finished_at - step.started_at).total_seconds(), 2) for step in pipeline.last_trace.steps
    }
    result.put(
        {
            "seconds": seconds,
            "rows": rows,
            "steps": steps,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def in_fresh_process(target, endpoint: str) -> dict:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    with tempfile.TemporaryDirectory() as data_dir:
        process = context.Process(target=target, args=(endpoint, data_dir, result))
        process.start()
        outcome = result.get()
        process.join()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        upload_batches(endpoint, args.lines, args.files)
        for label, target in (
            ("platform r2_files (Logpush preset)", platform_load),
            ("stock dlt filesystem + read_jsonl", stock_dlt_load),
        ):
            outcome = in_fresh_process(target, endpoint)
            print(
                f"{label}: {args.lines} lines in {args.files} files: {outcome['seconds']:.1f} s, peak RSS "
                f"{outcome['peak_rss_mb']:.0f} MB, rows {outcome['rows']}, dlt steps {outcome['steps']}"
            )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
