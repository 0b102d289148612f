"""What one run is asked to do, whoever asks (CLI, Worker run request, Dagster run config or partition)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RunRequest:
    limit: int | None = None  # stop after this many records (samples, smoke runs)
    keys: tuple[str, ...] | None = None  # explicit keys instead of a listing (backfill batches)
    full_refresh: bool = False  # drop what the table holds and load the whole namespace
    from_snapshot: str | None = None  # replay a raw snapshot instead of reading KV
    window: tuple[dt.datetime, dt.datetime] | None = None  # incremental windows starting in [start, end)
    now: dt.datetime | None = None  # reference time of the lookback windows (tests pin it)
    on_page: Callable[[int], None] | None = None  # progress: called with each page's record count
