"""Raw snapshots: gzip NDJSON of exactly what a run extracted, for audit and replay without touching KV.

Written to a local temp file while records stream (memory stays flat), then published in one step to the object
key `{r2_prefix}/{YYYY-MM-DD}/{load_id}.ndjson.gz` of the snapshot store: R2 through its S3 API when a bucket is
configured, the local data folder otherwise. A failed extraction publishes nothing.

The snapshot of a run that read the whole source is `{load_id}.complete.ndjson.gz`: replaying it loads the table
as that run did (a `replace` source replaces it), where a replay of part of a source (a limit, keys, a time window)
can only merge on the key.

Keys come from definitions and run config, so they are checked here, where they become paths: a key is relative,
has no `..`, and a local one resolves inside the snapshot folder (symlinks included). A replay reads only a
snapshot of its own source, never a URL or a file elsewhere.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import orjson

from dlt_platform.settings import Settings

_KEY_CHARACTERS = re.compile(r"^[A-Za-z0-9_\-./]+$")
# What follows the prefix in a snapshot's key: the date folder and the dlt load id.
_SNAPSHOT_NAME = r"/\d{4}-\d{2}-\d{2}/[A-Za-z0-9_.\-]+\.ndjson\.gz"
_COMPLETE_SUFFIX = ".complete.ndjson.gz"


def relative_key(value: str, field: str) -> str:
    """`value` as an object key relative to the snapshot store, or a ValueError naming `field`."""
    if "://" in value:  # not echoed: a URL may carry credentials or a signature
        raise ValueError(
            f"{field}: must be an object key relative to the snapshot store, not a URL or an absolute path"
        )
    if value.startswith("/"):
        raise ValueError(
            f"{field}: must be an object key relative to the snapshot store, not a URL or an absolute path: '{value}'"
        )
    if not _KEY_CHARACTERS.match(value):
        raise ValueError(f"{field}: only letters, digits and _ - . / are allowed: '{value}'")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise ValueError(f"{field}: '..', '.' and empty path segments are not allowed: '{value}'")
    return value


def snapshot_location(settings: Settings, key: str, field: str) -> str:
    """The fsspec URL (R2) or local path of an object key; a local one must resolve inside the snapshot folder."""
    relative_key(key, field)
    if settings.r2_bucket:
        return f"{settings.snapshot_root}/{key}"
    root = Path(settings.snapshot_root).resolve()
    path = (root / key).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{field}: '{key}' resolves outside the snapshot folder {root}")
    return str(path)


def replay_key(value: str, r2_prefix: str | None, source_id: str, settings: Settings) -> str:
    """The object key a `from_snapshot` request names, accepted only for a snapshot of this source under its own
    prefix. The URL a load printed (`{snapshot_root}/{key}`) names the same object and is accepted too."""
    if not r2_prefix:
        raise ValueError(f"from_snapshot: source {source_id} keeps no snapshots (staging.r2_prefix is not set)")
    key = value.strip().removeprefix(f"{settings.snapshot_root}/")
    relative_key(key, "from_snapshot")
    prefix = r2_prefix.strip("/")
    if not re.fullmatch(re.escape(prefix) + _SNAPSHOT_NAME, key):
        raise ValueError(
            f"from_snapshot: expected a snapshot of {source_id}: '{prefix}/YYYY-MM-DD/<load_id>"
            f".ndjson.gz', got '{value}'"
        )
    return key


def is_complete_snapshot(key: str) -> bool:
    """True for the snapshot of a run that read the whole source (see the module's docstring)."""
    return key.endswith(_COMPLETE_SUFFIX)


class SnapshotWriter:
    def __init__(self, settings: Settings, r2_prefix: str) -> None:
        self.settings, self.r2_prefix = settings, relative_key(r2_prefix.strip("/"), "staging.r2_prefix")
        tmp_dir = settings.data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        handle, self._tmp_path = tempfile.mkstemp(suffix=".ndjson.gz", dir=tmp_dir)
        os.close(handle)
        self._file = gzip.open(self._tmp_path, "wt", encoding="utf-8", compresslevel=1)

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str))
        self._file.write("\n")

    def publish(self, load_id: str, when: dt.datetime, complete: bool) -> str:
        """Moves the snapshot to its object key; returns its URL in the store (what `from_snapshot` accepts).
        `complete`: the run read the whole source."""
        self._file.close()
        key = f"{self.r2_prefix}/{when:%Y-%m-%d}/{load_id}{_COMPLETE_SUFFIX if complete else '.ndjson.gz'}"
        try:
            location = snapshot_location(self.settings, key, "staging.r2_prefix")
        except ValueError:
            self.discard()
            raise
        if self.settings.r2_bucket:
            fs, path = fsspec.core.url_to_fs(location, **self.settings.snapshot_storage_options())
            fs.put_file(self._tmp_path, path)
            os.remove(self._tmp_path)
        else:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp_path, location)
        return f"{self.settings.snapshot_root}/{key}"

    def discard(self) -> None:
        self._file.close()
        if os.path.exists(self._tmp_path):
            os.remove(self._tmp_path)


def read_snapshot(key: str, settings: Settings) -> Iterator[dict]:
    """Records of the snapshot at an object key of the store (see replay_key)."""
    url = snapshot_location(settings, key, "from_snapshot")
    # Read a megabyte at a time and split lines here: line by line, gzip's reader costs as much as parsing them.
    with fsspec.open(url, "rb", compression="gzip", **settings.snapshot_storage_options()) as file:
        rest = b""
        while chunk := file.read(1 << 20):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.strip():
                    yield _record(line)
        if rest.strip():
            yield _record(rest)


def snapshot_pages(
    key: str, settings: Settings, keep: Callable[[dict], bool] | None = None, size: int = 1000
) -> Iterator[list[dict]]:
    """A snapshot's records (those `keep` accepts) in pages of up to `size`, as a replay hands them to dlt."""
    page: list[dict] = []
    for record in read_snapshot(key, settings):
        if keep is None or keep(record):
            page.append(record)
            if len(page) == size:
                yield page
                page = []
    if page:
        yield page


def _record(line: bytes) -> dict:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:  # what only Python's json writes: NaN, integers past 64 bits
        return json.loads(line)
