"""Raw snapshots: gzip NDJSON of exactly what a run extracted, for audit and replay without touching KV.

Written to a local temp file while records stream (memory stays flat), then published in one step to
`{root}/{r2_prefix}/{YYYY-MM-DD}/{load_id}.ndjson.gz`: R2 through its S3 API when a bucket is configured,
the local data folder otherwise. A failed extraction publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec

from dlt_platform.settings import Settings


class SnapshotWriter:
    def __init__(self, settings: Settings, r2_prefix: str) -> None:
        self.settings, self.r2_prefix = settings, r2_prefix.strip("/")
        tmp_dir = settings.data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        handle, self._tmp_path = tempfile.mkstemp(suffix=".ndjson.gz", dir=tmp_dir)
        os.close(handle)
        self._file = gzip.open(self._tmp_path, "wt", encoding="utf-8", compresslevel=1)
        self.records = 0

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str))
        self._file.write("\n")
        self.records += 1

    def publish(self, load_id: str, when: dt.datetime) -> str:
        self._file.close()
        relative = f"{self.r2_prefix}/{when:%Y-%m-%d}/{load_id}.ndjson.gz"
        url = f"{self.settings.snapshot_root}/{relative}"
        if self.settings.r2_bucket:
            fs, path = fsspec.core.url_to_fs(url, **self.settings.snapshot_storage_options())
            fs.put_file(self._tmp_path, path)
            os.remove(self._tmp_path)
        else:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp_path, url)
        return url

    def discard(self) -> None:
        self._file.close()
        if os.path.exists(self._tmp_path):
            os.remove(self._tmp_path)


def read_snapshot(url: str, settings: Settings) -> Iterator[dict]:
    """Records of a snapshot, by URL or by a path relative to the snapshot root."""
    if "://" not in url and not Path(url).is_absolute() and not Path(url).exists():
        url = f"{settings.snapshot_root}/{url}"
    with fsspec.open(url, "rt", compression="gzip", encoding="utf-8", **settings.snapshot_storage_options()) as file:
        for line in file:
            if line.strip():
                yield json.loads(line)
