"""Incremental key-prefix windows: date-prefixed keys make each time window one listing prefix."""

from __future__ import annotations

import datetime as dt

from dlt_platform.source_types.cloudflare_kv.definition import Incremental

STEPS = {"day": dt.timedelta(days=1), "hour": dt.timedelta(hours=1)}


def window_start(moment: dt.datetime, step: str) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    if step == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def window_prefixes(incremental: Incremental, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Prefixes of every window that starts in [start, end), oldest first, without repeats."""
    step = STEPS[incremental.step]
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
    step = STEPS[incremental.step]
    current = window_start(now, incremental.step)
    return window_prefixes(incremental, current - step * (incremental.lookback - 1), current + step)
