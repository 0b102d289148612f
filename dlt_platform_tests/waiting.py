"""Bounded waiting for the tests that drive real processes."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll(check: Callable[[], object], timeout: float, interval: float, what: str):
    """Call `check` until it returns something truthy; bounded, the last value is in the failure message."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
