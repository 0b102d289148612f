"""r2_files loads through R2's S3 API (moto's S3 server on loopback) into DuckDB: Logpush files written the way
Logpush writes them (gzip NDJSON in {DATE} folders), timestamps typed, a second run reading only new files, a
batch still uploading or cut short never half-loaded, and CSV exports merged on their key."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import logging

import pytest

from dlt_platform.load_request import LoadRequest
from dlt_platform.loads import run_load
from dlt_platform.source_types.r2_files.source import R2FilesError

from .conftest import query
from .r2_files_fixtures import (
    BUCKET,
    R2_SECRET,
    http_request,
    latest_modified,
    logpush_batch,
    put_newer_than,
    r2_definition,
    with_settings,
)

DAY = dt.datetime(2026, 12, 6, 23, 59, 0, tzinfo=dt.UTC)
LOGPUSH = {
    "type": "logpush",
    "dataset": "http_requests",
    "prefix": "logpush/http_requests",
    "timestamp_format": "unixnano",
}


def batch(first: int, count: int, start: dt.datetime, timestamp_format: str = "unixnano"):
    records = [
        http_request(number, start + dt.timedelta(seconds=number - first), timestamp_format)
        for number in range(first, first + count)
    ]
    return logpush_batch(records, start)


def ray_ids(settings, table: str = "http_requests") -> list[str]:
    return [row[0] for row in query(settings, f"select ray_id from cloudflare_logs.{table} order by ray_id")]


def test_logpush_batches_load_with_typed_timestamps_and_a_second_run_reads_only_new_files(s3, r2_settings):
    # Two days' folders, as the job's {DATE} path writes them; the newest batch is still uploading (multipart).
    for first, start in ((0, DAY), (100, DAY + dt.timedelta(minutes=2))):
        key, body = batch(first, 100, start)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    uploading_key, uploading_body = batch(200, 50, DAY + dt.timedelta(minutes=3))
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=uploading_key)
    part = s3.upload_part(
        Bucket=BUCKET, Key=uploading_key, UploadId=upload["UploadId"], PartNumber=1, Body=uploading_body
    )
    s3.put_object(Bucket=BUCKET, Key="logpush/http_requests/ownership-challenge.txt", Body=b"token")  # not a batch
    definition = r2_definition([LOGPUSH])

    first = run_load(definition, r2_settings)
    assert first.rows_by_table == {"http_requests": 200}
    assert ray_ids(r2_settings) == [f"{n:016x}" for n in range(200)]
    types = dict(
        query(
            r2_settings,
            "select column_name, data_type from information_schema.columns where "
            "table_schema = 'cloudflare_logs' and table_name = 'http_requests'",
        )
    )
    assert types["edge_start_timestamp"] == types["edge_end_timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["edge_response_status"] == "BIGINT"
    [(earliest, latest)] = query(
        r2_settings, "select min(edge_start_timestamp), max(edge_end_timestamp) from cloudflare_logs.http_requests"
    )
    assert earliest == DAY
    assert latest == DAY + dt.timedelta(minutes=2, seconds=100)

    # The upload completes and the job writes one more batch: the next run reads those two files only.
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key=uploading_key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    key, body = batch(250, 10, DAY + dt.timedelta(minutes=4))
    put_newer_than(s3, key, body, latest_modified(s3))
    second = run_load(definition, r2_settings)
    assert second.rows_by_table == {"http_requests": 60}
    assert ray_ids(r2_settings) == [f"{n:016x}" for n in range(260)]  # appended, nothing read twice

    third = run_load(definition, r2_settings)
    assert third.rows_by_table == {}


def test_a_batch_cut_short_is_left_out_whole_until_a_whole_copy_lands(s3, r2_settings, caplog):
    key, body = batch(0, 40, DAY)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    cut_key, cut_body = batch(40, 500, DAY + dt.timedelta(minutes=1))
    cut_modified = put_newer_than(s3, cut_key, cut_body[: len(cut_body) // 2], None)
    definition = r2_definition([LOGPUSH])

    with caplog.at_level(logging.WARNING):
        first = run_load(definition, r2_settings)
    assert first.rows_by_table == {"http_requests": 40}  # none of the cut file's rows, and the run succeeded
    assert any(
        cut_key in record.getMessage() and "not a whole gzip file" in record.getMessage() for record in caplog.records
    )

    put_newer_than(s3, cut_key, cut_body, cut_modified)
    second = run_load(definition, r2_settings)
    assert second.rows_by_table == {"http_requests": 500}
    assert ray_ids(r2_settings) == [f"{n:016x}" for n in range(540)]


@pytest.mark.parametrize("timestamp_format", ["rfc3339", "unix", "unixnano"])
def test_each_logpush_timestamp_format_is_typed_as_the_same_moment(s3, r2_settings, timestamp_format):
    key, body = batch(0, 3, DAY, timestamp_format)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    definition = r2_definition([{**LOGPUSH, "timestamp_format": timestamp_format}])
    run_load(definition, r2_settings)
    moments = [
        row[0]
        for row in query(r2_settings, "select edge_start_timestamp from cloudflare_logs.http_requests order by 1")
    ]
    assert moments == [DAY + dt.timedelta(seconds=n) for n in range(3)]


def test_a_timestamp_in_another_format_fails_the_run_naming_the_field(s3, r2_settings):
    key, body = batch(0, 3, DAY, "rfc3339")
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    definition = r2_definition([{**LOGPUSH, "timestamp_format": "unixnano"}])
    with pytest.raises(Exception, match=r"EdgeStartTimestamp: expected a unixnano timestamp") as error:
        run_load(definition, r2_settings)
    assert R2_SECRET not in str(error.value)


def csv_gz(rows: list[tuple]) -> bytes:
    text = io.StringIO()
    text.write("order_id,status,amount\n")
    for row in rows:
        text.write(",".join(str(value) for value in row) + "\n")
    return gzip.compress(text.getvalue().encode())


def test_csv_exports_merge_on_their_key_and_only_changed_files_travel(s3, r2_settings):
    s3.put_object(Bucket=BUCKET, Key="exports/orders/part-1.csv.gz", Body=csv_gz([(1, "new", 10), (2, "new", 20)]))
    s3.put_object(Bucket=BUCKET, Key="exports/orders/part-2.csv.gz", Body=csv_gz([(3, "new", 30)]))
    s3.put_object(Bucket=BUCKET, Key="exports/customers/part-1.csv.gz", Body=csv_gz([(9, "other", 0)]))
    definition = r2_definition(
        [
            {
                "type": "files",
                "name": "orders",
                "glob": "exports/orders/*.csv.gz",
                "format": "csv",
                "primary_key": "order_id",
                "write_disposition": "merge",
            }
        ]
    )
    assert run_load(definition, r2_settings).rows_by_table == {"orders": 3}

    # part-2 is rewritten (order 3 paid, order 4 added); part-1 is untouched and is not read again.
    put_newer_than(s3, "exports/orders/part-2.csv.gz", csv_gz([(3, "paid", 30), (4, "new", 40)]), latest_modified(s3))
    assert run_load(definition, r2_settings).rows_by_table == {"orders": 2}
    assert query(r2_settings, "select order_id, status, amount from cloudflare_logs.orders order by order_id") == [
        (1, "new", 10),
        (2, "new", 20),
        (3, "paid", 30),
        (4, "new", 40),
    ]


def test_jsonl_and_parquet_tables_in_one_source(s3, r2_settings):
    import pyarrow as pa
    import pyarrow.parquet as pq

    s3.put_object(
        Bucket=BUCKET, Key="events/2026-12-06.jsonl", Body=b'{"id": 1, "kind": "a"}\n{"id": 2, "kind": "b"}\n'
    )
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3], "score": [0.5, 1.5, 2.5]}), sink)
    s3.put_object(Bucket=BUCKET, Key="scores/scores.parquet", Body=sink.getvalue())
    definition = r2_definition(
        [
            {"type": "files", "name": "events", "glob": "events/*.jsonl", "format": "jsonl"},
            {"type": "files", "name": "scores", "glob": "scores/*.parquet", "format": "parquet"},
        ],
        write_disposition="replace",
    )
    assert run_load(definition, r2_settings).rows_by_table == {"events": 2, "scores": 3}
    # replace reads every file again: the tables are the bucket's files, not their history
    assert run_load(definition, r2_settings).rows_by_table == {"events": 2, "scores": 3}
    assert query(r2_settings, "select sum(score) from cloudflare_logs.scores") == [(4.5,)]


def test_a_limited_run_loads_a_sample_and_leaves_the_cursor_alone(s3, r2_settings):
    key, body = batch(0, 30, DAY)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    definition = r2_definition([LOGPUSH])
    assert run_load(definition, r2_settings, LoadRequest(limit=5)).rows_by_table == {"http_requests": 5}
    assert run_load(definition, r2_settings).rows_by_table == {"http_requests": 30}


def test_requests_an_r2_files_source_cannot_run_are_refused_naming_the_field(s3, r2_settings):
    definition = r2_definition([LOGPUSH])
    with pytest.raises(ValueError, match=r"^keys: not for r2_files sources"):
        run_load(definition, r2_settings, LoadRequest(keys=("a",)))
    replace = r2_definition([LOGPUSH], write_disposition="replace")
    with pytest.raises(ValueError, match=r"^limit: table 'http_requests' replaces its table and has no primary_key"):
        run_load(replace, r2_settings, LoadRequest(limit=3))


def test_an_endpoint_without_credentials_is_one_line_naming_the_variables(r2_settings):
    definition = r2_definition([LOGPUSH])
    with pytest.raises(R2FilesError, match=r"^DLT_R2_ACCESS_KEY_ID and DLT_R2_SECRET_ACCESS_KEY: required"):
        run_load(definition, with_settings(r2_settings, r2_secret_access_key=None))


def test_a_bucket_that_does_not_exist_is_one_line_naming_the_field(s3, r2_settings):
    definition = r2_definition([LOGPUSH])
    missing = definition.model_copy(update={"extract": definition.extract.model_copy(update={"bucket": "edge-logz"})})
    with pytest.raises(R2FilesError, match=r"^extract.bucket: no bucket 'edge-logz' at DLT_R2_ENDPOINT_URL") as error:
        run_load(missing, r2_settings)
    assert R2_SECRET not in str(error.value)


def test_without_an_endpoint_the_bucket_is_a_local_folder(tmp_path, r2_settings):
    local = with_settings(r2_settings, r2_endpoint_url=None)
    key, body = batch(0, 7, DAY)
    path = local.data_dir / "r2" / BUCKET / key
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    assert run_load(r2_definition([LOGPUSH]), local).rows_by_table == {"http_requests": 7}


def test_a_full_refresh_reads_every_file_again_into_an_emptied_table(s3, r2_settings):
    for first, start in ((0, DAY), (10, DAY + dt.timedelta(minutes=1))):
        key, body = batch(first, 10, start)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    definition = r2_definition([LOGPUSH])
    assert run_load(definition, r2_settings).rows_by_table == {"http_requests": 20}
    assert run_load(definition, r2_settings).rows_by_table == {}
    assert run_load(definition, r2_settings, LoadRequest(full_refresh=True)).rows_by_table == {"http_requests": 20}
    assert query(r2_settings, "select count(*) from cloudflare_logs.http_requests") == [(20,)]
