"""Raw snapshots through R2's S3 API: written, listed under {r2_prefix}/{date}/{load_id}, replayed.

R2 cannot be reached from here; moto's S3 server on loopback speaks the same S3 API (it follows AWS's
documented request and response shapes), which is all R2 exposes to the platform.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json

import boto3
import pytest
from moto.server import ThreadedMotoServer

from dlt_platform.load_request import LoadRequest
from dlt_platform.loads import run_load

from .conftest import NAMESPACE_ID, make_definition, query


@pytest.fixture
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_snapshots_go_to_the_bucket_and_replay_from_it(kv_state, settings, s3_endpoint, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="r2-key-id",
                      aws_secret_access_key="r2-secret")
    s3.create_bucket(Bucket="dlt-raw-staging")
    r2 = dataclasses.replace(settings, kv_transport_override="rest", r2_bucket="dlt-raw-staging",
                             r2_endpoint_url=s3_endpoint, r2_access_key_id="r2-key-id",
                             r2_secret_access_key="r2-secret")
    definition = make_definition(staging={"raw_snapshot": True, "r2_prefix": "cloudflare_kv/orders"})
    for number in range(5):
        kv_state.namespaces[NAMESPACE_ID].put(f"order:{number}", json.dumps({"n": number}))

    first = run_load(definition, r2)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    key = f"cloudflare_kv/orders/{today}/{first.load_id}.complete.ndjson.gz"
    assert first.snapshot_url == f"s3://dlt-raw-staging/{key}"
    # The S3 stand-in is the session's: other tests keep other prefixes in the bucket (Dagster's compute logs).
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket="dlt-raw-staging", Prefix="cloudflare_kv/")["Contents"]]
    assert listed == [key]
    body = gzip.decompress(s3.get_object(Bucket="dlt-raw-staging", Key=key)["Body"].read()).decode()
    assert [json.loads(line)["key"] for line in body.splitlines()] == [f"order:{n}" for n in range(5)]
    assert not list((settings.data_dir / "tmp").iterdir()), "the local temp file is removed after upload"

    kv_state.namespaces[NAMESPACE_ID].entries.clear()
    s3.create_bucket(Bucket="another-bucket")
    s3.put_object(Bucket="another-bucket", Key=key, Body=gzip.compress(b'{"key": "planted"}\n'))
    with pytest.raises(ValueError, match="from_snapshot: must be an object key"):
        run_load(definition, r2, LoadRequest(from_snapshot=f"s3://another-bucket/{key}"))
    replay = run_load(definition, r2, LoadRequest(from_snapshot=first.snapshot_url))
    assert replay.rows_by_table == {"orders_kv": 5}
    assert query(r2, "select count(*) from source_test.orders_kv") == [(5,)]
