"""What one load is asked to do, whoever asks (CLI, Worker run request, Dagster run config or partition), and the
rules every request obeys wherever it came from: which write disposition it gets, and what it may combine.

Named LoadRequest, not RunRequest: Dagster's `dg.RunRequest` (a sensor's or schedule's request for a run) is used
next to it; the Worker's `RunRequest` (worker/src/bodies.ts) is the JSON body that becomes one of these."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from dlt_platform.config import SourceDefinition
from dlt_platform.definition_base import WriteDisposition
from dlt_platform.settings import Settings
from dlt_platform.snapshots import replay_key
from dlt_platform.source_types import source_type_of


@dataclass(frozen=True)
class LoadRequest:
    limit: int | None = None  # stop after this many records (samples, smoke runs)
    # Explicit record keys instead of a listing (backfill batches of KV keys); a type without keys refuses them in
    # its check_request.
    keys: tuple[str, ...] | None = None
    full_refresh: bool = False  # drop what the tables hold and load the whole source
    from_snapshot: str | None = None  # replay a raw snapshot (object key in the snapshot store) instead of reading
    window: tuple[dt.datetime, dt.datetime] | None = None  # incremental windows starting in [start, end)
    now: dt.datetime | None = None  # reference time of the lookback windows (tests pin it)
    on_page: Callable[[int], None] | None = None  # progress: called with each page's record count


def reads_part_of_source(definition: SourceDefinition, request: LoadRequest) -> bool:
    """True when the run reads only part of what the source holds: a limit, explicit keys, the replay of a partial
    run's snapshot, a time window, or what the source type adds (a KV source's lookback)."""
    return source_type_of(definition).reads_part_of_source(definition, request)


def write_disposition_for(definition: SourceDefinition, request: LoadRequest) -> WriteDisposition:
    """The one place that decides how a run writes its table (the source type's rule, source_types/base.py).

    `replace` swaps the whole table for what the run read, so it only applies to a run that reads the whole
    source; a partial run of a `replace` source merges on its key instead (rows of the keys it read are refreshed,
    child rows included; every other row stays). `merge` is always safe. `append` stays `append` for partial runs
    too: it never deletes, and merging into an append table would collapse its history of each key. Webhook tables
    always merge on the delivery id.
    """
    return source_type_of(definition).write_disposition(definition, request)


def checked_request(definition: SourceDefinition, settings: Settings, request: LoadRequest) -> LoadRequest:
    """The request if it is one the platform runs (`from_snapshot` normalized to its object key); otherwise a
    ValueError naming the field. Checked before anything is read, so a refused request touches nothing."""
    source_type_of(definition).check_request(definition, request)
    if request.limit is not None and request.limit < 1:
        raise ValueError(f"limit: must be at least 1, got {request.limit}")
    if request.keys is not None and not request.keys:
        raise ValueError("keys: give at least one key, or leave keys out to load the whole source")
    if request.full_refresh and (request.limit is not None or request.keys):
        raise ValueError(
            "full_refresh: cannot be combined with limit or keys (it would empty the table and load "
            "only part of the source)"
        )
    if request.from_snapshot:
        key = replay_key(request.from_snapshot, definition.staging.r2_prefix, definition.source_id, settings)
        request = dataclasses.replace(request, from_snapshot=key)
    return request
