"""Raw snapshots of a rest_api run: one gzip NDJSON object per run holding every item as fetched, each line
{"resource", "url", "fetched_at", "item"}, at `{r2_prefix}/{YYYY-MM-DD}/{load_id}.ndjson.gz` like KV snapshots
(dlt_platform/snapshots.py writes, stores and checks them).

Items of all resources of a source go to one file while they stream (opened on the first item, so building a
source for Dagster's asset graph writes nothing); it is published once the run's load succeeded and discarded
when the run failed. A replay turns each resource's lines back into rows, audit columns included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from dlt_platform.settings import Settings
from dlt_platform.snapshots import SnapshotWriter, snapshot_pages


class RunSnapshot:
    def __init__(self, settings: Settings, r2_prefix: str, complete: bool) -> None:
        """`complete`: the run reads the whole source (snapshots.py: its replay may replace tables)."""
        self.settings, self.r2_prefix, self.complete = settings, r2_prefix, complete
        self._writer: SnapshotWriter | None = None

    def write(self, resource: str, url: str, fetched_at: dt.datetime, item: dict) -> None:
        if self._writer is None:
            self._writer = SnapshotWriter(self.settings, self.r2_prefix)
        self._writer.write({"resource": resource, "url": url, "fetched_at": fetched_at.isoformat(), "item": item})

    def publish(self, load_id: str) -> str | None:
        """The snapshot's URL in the store, or None when the run fetched nothing."""
        writer, self._writer = self._writer, None
        return writer.publish(load_id, dt.datetime.now(dt.UTC), self.complete) if writer else None

    def discard(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.discard()


def replayed_items(key: str, resource: str, settings: Settings) -> Iterator[list[dict]]:
    """Pages of one resource's lines of a snapshot."""
    return snapshot_pages(key, settings, keep=lambda line: line.get("resource") == resource)
