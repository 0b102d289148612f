"""The local stack's R2 files: without DLT_R2_ENDPOINT_URL an r2_files source reads the folder
<data dir>/r2/<bucket> (source.py), and `dlt-platform up` seeds the sample source's bucket there with what a
Logpush http_requests job writes: `logpush/http_requests/{DATE}/<start>_<end>_<hash>.log.gz`, gzip NDJSON,
unixnano timestamps. One folder per day: each day's `up` adds that day's batches, which the next run reads."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

SAMPLE_BUCKET, SAMPLE_PREFIX = "edge-logs", "logpush/http_requests"
SAMPLE_BATCHES, SAMPLE_LINES_PER_BATCH = 5, 200
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PATHS = ["/", "/items", "/items/42", "/cart", "/checkout", "/api/orders", "/static/app.js", "/favicon.ico"]
_STATUSES = [200, 200, 200, 200, 304, 200, 404, 500]


def sample_requests(day: dt.date, batch: int, lines: int) -> tuple[dt.datetime, list[dict]]:
    """(batch start, records) of one batch of http_requests: deterministic per day and batch."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(minutes=batch)
    records = []
    for line in range(lines):
        number = batch * lines + line
        at = start + dt.timedelta(milliseconds=150 * line)
        nanos = (at - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        records.append(
            {
                "RayID": hashlib.sha256(f"{day}:{number}".encode()).hexdigest()[:16],
                "ClientIP": f"198.51.100.{number % 250}",
                "ClientCountry": ["de", "us", "fr", "jp"][number % 4],
                "ClientRequestHost": "shop.example.com",
                "ClientRequestMethod": "GET" if number % 5 else "POST",
                "ClientRequestURI": _PATHS[number % len(_PATHS)],
                "EdgeResponseStatus": _STATUSES[number % len(_STATUSES)],
                "EdgeResponseBytes": 512 + number % 4096,
                "EdgeStartTimestamp": nanos,
                "EdgeEndTimestamp": nanos + (3 + number % 40) * 1_000_000,
            }
        )
    return start, records


def seed_logpush_folder(
    data_dir: Path, day: dt.date, batches: int = SAMPLE_BATCHES, lines: int = SAMPLE_LINES_PER_BATCH
) -> int:
    """Writes the day's batches that are not there yet (an existing file keeps its modification time, so a run
    does not read it again); returns the number of records the day's folder holds."""
    folder = data_dir / "r2" / SAMPLE_BUCKET / SAMPLE_PREFIX / f"{day:%Y%m%d}"
    folder.mkdir(parents=True, exist_ok=True)
    for batch in range(batches):
        start, records = sample_requests(day, batch, lines)
        end = start + dt.timedelta(seconds=60)
        name = f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}_{batch:08x}.log.gz"
        if not (folder / name).exists():
            body = gzip.compress("".join(json.dumps(record) + "\n" for record in records).encode(), mtime=0)
            partial = folder / f".{name}.part"  # written whole, then renamed: never read half-written
            partial.write_bytes(body)
            partial.rename(folder / name)
    return batches * lines
