"""Incremental key-prefix windows: date-prefixed keys make each time window one listing prefix."""

from __future__ import annotations

import datetime as dt

from dlt_platform.source_types.base import WINDOW_STEPS, window_start
from dlt_platform.source_types.cloudflare_kv.definition import Incremental


def window_prefixes(incremental: Incremental, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Prefixes of every window that starts in [start, end), oldest first, without repeats."""
    step = WINDOW_STEPS[incremental.step]
    moment = window_start(start, incremental.step)
    prefixes: list[str] = []
    while moment < end:
        prefix = incremental.key_prefix.format(date=moment)
        if prefix not in prefixes:
            prefixes.append(prefix)
        moment += step
    return prefixes


def lookback_prefixes(incremental: Incremental, now: dt.datetime) -> list[str]:
    """The windows a normal run loads: the current one and the `lookback - 1` before it."""
    step = WINDOW_STEPS[incremental.step]
    current = window_start(now, incremental.step)
    return window_prefixes(incremental, current - step * (incremental.lookback - 1), current + step)
