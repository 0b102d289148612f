"""Fixtures of the r2_files tests: an S3-protocol server on loopback (moto's, which follows AWS's documented
request and response shapes: all R2 exposes to the platform is that S3 API) and files written the way Cloudflare
Logpush writes them (`<prefix>/{DATE}/<start>_<end>_<hash>.log.gz`, gzip NDJSON)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import time
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from dlt_platform.config import parse_definition
from dlt_platform.settings import Settings

BUCKET = "edge-logs"
R2_KEY_ID, R2_SECRET = "r2-files-key-id", "r2-files-secret-not-real"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def s3_server(monkeypatch):
    # boto's own credential chain must not find another key: the platform passes the R2 key explicitly.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets per process, not per server: each test starts from an empty store.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    yield endpoint
    server.stop()


@pytest.fixture
def s3(s3_server):
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id=R2_KEY_ID,
        aws_secret_access_key=R2_SECRET,
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def r2_settings(tmp_path: Path, s3_server) -> Settings:
    return Settings(
        config_path=tmp_path / "sources.json",
        data_dir=tmp_path / "data",
        destination_override="duckdb",
        r2_endpoint_url=s3_server,
        r2_access_key_id=R2_KEY_ID,
        r2_secret_access_key=R2_SECRET,
    )


def r2_definition(tables: list[dict], write_disposition: str = "append", source_id: str = "edge_logs", **overrides):
    return parse_definition(
        {
            "source_id": source_id,
            "source_type": "r2_files",
            "destination": {"type": "duckdb", "dataset": "cloudflare_logs", "write_disposition": write_disposition},
            "extract": {"bucket": BUCKET, "tables": tables},
            **overrides,
        }
    )


def http_request(number: int, at: dt.datetime, timestamp_format: str) -> dict:
    """One http_requests record as Logpush writes it, its timestamps in the job's format."""

    def stamp(moment: dt.datetime):
        if timestamp_format == "unix":
            return int(moment.timestamp())
        if timestamp_format == "unixnano":
            return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "RayID": f"{number:016x}",
        "ClientIP": f"198.51.100.{number % 250}",
        "ClientRequestHost": "example.com",
        "ClientRequestMethod": "GET",
        "ClientRequestURI": f"/items/{number}",
        "EdgeResponseStatus": 200,
        "EdgeStartTimestamp": stamp(at),
        "EdgeEndTimestamp": stamp(at + dt.timedelta(seconds=1)),
    }


def logpush_batch(records: list[dict], start: dt.datetime, prefix: str = "logpush/http_requests") -> tuple[str, bytes]:
    """(object key, body) of one Logpush batch: `{DATE}` folder, `<start>_<end>_<hash>.log.gz`, gzip NDJSON."""
    end = start + dt.timedelta(seconds=30)
    body = gzip.compress("".join(json.dumps(record) + "\n" for record in records).encode())
    name = f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}_{hashlib.sha256(body).hexdigest()[:8]}.log.gz"
    return f"{prefix}/{start:%Y%m%d}/{name}", body


def put_newer_than(s3, key: str, body: bytes, newer_than: dt.datetime | None) -> dt.datetime:
    """Writes an object and returns its LastModified; when `newer_than` is given, writes again until S3 dates it
    later (LastModified has whole-second precision)."""
    while True:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        modified = s3.head_object(Bucket=BUCKET, Key=key)["LastModified"]
        if newer_than is None or modified > newer_than:
            return modified
        time.sleep(0.05)  # until S3's clock passes `newer_than`


def latest_modified(s3) -> dt.datetime:
    return max(item["LastModified"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"])


def with_settings(settings: Settings, **changes) -> Settings:
    return dataclasses.replace(settings, **changes)
