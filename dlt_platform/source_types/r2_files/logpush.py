"""The Logpush preset: how Cloudflare Logpush writes a job's logs to R2, and how its timestamps are typed.

A job's destination path `<prefix>/{DATE}` puts its files in one folder per day (`{DATE}` is YYYYMMDD), each file
a batch of gzip NDJSON named `<start>_<end>_<hash>.log.gz`. Timestamp fields come in the job's
`output_options.timestamp_format`: RFC 3339 text, Unix seconds or Unix nanoseconds (integers); fields named
`*TimestampMs` (workers_trace_events' EventTimestampMs) are Unix milliseconds whatever the format.

R2 shows an object only once its upload completed, so a batch still being uploaded is not listed. A file that is
listed but cut short (a copy that stopped half-way) would fail the run in the middle of its rows: `whole_files`
reads each gzip stream to its end first and leaves such a file out of the run, with a warning, before any of its
rows are read; once it is whole it is a newer object, which the next run reads.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zlib

from dlt.common import logger

from dlt_platform.source_types.r2_files.definition import LogpushTable

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CHUNK = 1 << 20


def is_timestamp_field(name: str) -> bool:
    """The timestamp fields of Cloudflare's datasets: EdgeStartTimestamp, Timestamp, Datetime, EventTimestampMs..."""
    return name.endswith(("Timestamp", "TimestampMs")) or name == "Datetime"


def timestamp_hints(table: LogpushTable) -> dict:
    """Column hints of the fields the definition names (fields found by name are typed as they are converted)."""
    return {name: {"data_type": "timestamp"} for name in table.timestamp_fields or ()}


def _moment(name: str, value: object, timestamp_format: str) -> dt.datetime:
    if name.endswith("TimestampMs") and isinstance(value, int):
        return _EPOCH + dt.timedelta(milliseconds=value)
    if timestamp_format == "rfc3339" and isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if timestamp_format == "unix" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _EPOCH + dt.timedelta(seconds=value)
    if timestamp_format == "unixnano" and isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + dt.timedelta(microseconds=value // 1000)
    raise ValueError(
        f"{name}: expected a {timestamp_format} timestamp (timestamp_format {timestamp_format}), got {value!r:.60}"
    )


def typed_timestamps(table: LogpushTable):
    """A map step turning a record's timestamp fields into UTC datetimes (so dlt types them as timestamps)."""
    named = table.timestamp_fields
    timestamp_format = table.timestamp_format

    def convert(record: dict) -> dict:
        for name in named if named is not None else [field for field in record if is_timestamp_field(field)]:
            value = record.get(name)
            if value is not None and not isinstance(value, dt.datetime):
                try:
                    record[name] = _moment(name, value, timestamp_format)
                except ValueError as error:
                    raise ValueError(f"{error} (table {table.table})") from None
        return record

    return convert


def gzip_is_whole(content: bytes) -> bool:
    """True when `content` is one or more complete gzip members (checked to the end, CRC and length included)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            while stream.read(_CHUNK):
                pass
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return False
    return True


def whole_files(file_item) -> bool:
    """Keeps a listed Logpush file only when its content is a whole gzip stream; says which file it left out."""
    if gzip_is_whole(file_item["file_content"]):
        return True
    logger.warning(
        f"r2_files: {file_item['file_url']} is not a whole gzip file (an upload cut short?): left out "
        "of this run; a whole copy of it is read by a later run"
    )
    return False
