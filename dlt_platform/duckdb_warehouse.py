"""The local DuckDB warehouse: one file that runs take turns to use.

DuckDB lets one process write a database file, and no other process open it meanwhile (not even to read). Runs of
different sources start at once (`dlt-platform up` requests every source; Dagster runs several at a time), and
each opens the same `warehouse.duckdb`, so without turns whichever opened it second failed with DuckDB's "Could
not set lock on file". Here a run takes the warehouse's turn (an exclusive `flock` on `warehouse.duckdb.turn`)
for the whole of its dlt run, and readers (asset checks, the test helpers) take a shared turn; whoever waits says
so every few seconds and gives up after a bound with one line. A waiting run goes before readers that come after
it (it holds `warehouse.duckdb.writer` while it waits, and readers pass through that lock first): readers that
poll the warehouse back to back would otherwise keep a run waiting for as long as they poll. A process outside
the platform that holds the file open (a DuckDB shell) is waited for the same way: DuckDB's own lock is probed
before the turn is given.

The whole run rather than only dlt's load step holds the turn: dagster-dlt drops and restores the pipeline's state
from the warehouse at the start of a run and loads at its end, in one call. Local runs are short; BigQuery, the
production warehouse, has no turns at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a connection is made: settings.py (every process) imports this module
    import duckdb

# How often a waiting run says it is waiting, and how long it waits at most (DLT_PLATFORM_DUCKDB_WAIT_SECONDS).
REPORT_EVERY_SECONDS = 10.0
_POLL_SECONDS = 0.1

# DuckDB names the holder: 'Conflicting lock is held in /usr/bin/python3 (PID 9038)'.
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class WarehouseBusy(RuntimeError):
    """The warehouse stayed in use by another process for longer than the wait allows."""


# A process may nest turns (a run's asset check reads while the run holds the turn): flock would deadlock on a
# second descriptor of the same file, so turns are counted per path and only the first takes the flock.
_held: dict[Path, tuple[int, int]] = {}  # path -> (descriptor, depth)
_held_lock = threading.RLock()


def turn_file(database: Path) -> Path:
    return database.with_name(database.name + ".turn")


def writer_file(database: Path) -> Path:
    return database.with_name(database.name + ".writer")


def _flock(
    descriptor: int,
    mode: int,
    database: Path,
    started: float,
    deadline: float,
    say: Callable[[str], None],
    next_report: list[float],
) -> None:
    """flock within the deadline, saying every REPORT_EVERY_SECONDS that it waits."""
    while True:
        try:
            fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline:
                raise WarehouseBusy(
                    f"DuckDB warehouse {database} busy with another run for {now - started:.0f} s "
                    "(DLT_PLATFORM_DUCKDB_WAIT_SECONDS sets the wait)"
                ) from None
            if now >= next_report[0]:
                say(f"waiting for the DuckDB warehouse {database}: another run is using it ({now - started:.0f} s)")
                next_report[0] = now + REPORT_EVERY_SECONDS
            time.sleep(_POLL_SECONDS)


def memory_limit_for_machine() -> str:
    """DuckDB's memory limit during a load: a quarter of the machine's memory, between 256 MB and 8 GB. Loads
    take turns, so one DuckDB load runs at a time per warehouse; a wide table's merge (a webhook feed with
    thousands of columns) needs about 32 KiB per column per vector, far past a fixed 128 MB, and DuckDB spills to
    disk past the limit rather than failing."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 4 * 2**30
    return f"{max(256, min(total // 4 // 2**20, 8192))}MB"


def holder_of(error: BaseException) -> str:
    """'PID 9038 (/usr/bin/python3)' from DuckDB's lock error, or 'another process'."""
    match = _HOLDER.search(str(error))
    return f"PID {match['pid']} ({match['program']})" if match else "another process"


def is_lock_conflict(error: BaseException) -> bool:
    import duckdb

    return isinstance(error, duckdb.IOException) and "Could not set lock on file" in str(error)


def _wait_for_duckdb_lock(
    database: Path, deadline: float, waited_since: float, say: Callable[[str], None], read_only: bool
) -> None:
    """Wait until DuckDB itself lets this process open the file (a process outside the platform may hold it)."""
    import duckdb

    if not database.exists():
        return
    next_report = time.monotonic()  # the first conflict is said at once, then every REPORT_EVERY_SECONDS
    while True:
        try:
            duckdb.connect(str(database), read_only=read_only).close()
            return
        except duckdb.IOException as error:
            if not is_lock_conflict(error):
                raise
            now = time.monotonic()
            if now >= deadline:
                raise WarehouseBusy(
                    f"DuckDB warehouse {database} locked by {holder_of(error)} for {now - waited_since:.0f} s: close "
                    "the DuckDB session that holds it open (DLT_PLATFORM_DUCKDB_WAIT_SECONDS sets the wait)"
                ) from None
            if now >= next_report:
                say(
                    f"waiting for the DuckDB warehouse {database}: held open by {holder_of(error)} "
                    f"({now - waited_since:.0f} s)"
                )
                next_report = now + REPORT_EVERY_SECONDS
            time.sleep(_POLL_SECONDS * 5)


@contextlib.contextmanager
def warehouse_turn(
    database: Path, wait_seconds: float, say: Callable[[str], None] = print, read_only: bool = False
) -> Iterator[None]:
    """Hold the warehouse's turn: exclusive for a run that writes, shared for readers. Raises WarehouseBusy after
    `wait_seconds` of waiting, naming the holder."""
    database = database.resolve()
    with _held_lock:
        held = _held.get(database)
        if held is not None:
            _held[database] = (held[0], held[1] + 1)
    if held is not None:
        try:
            yield
        finally:
            with _held_lock:
                descriptor, depth = _held[database]
                _held[database] = (descriptor, depth - 1)
        return

    database.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(turn_file(database), os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    deadline = started + wait_seconds
    next_report = [started]  # the first wait is said at once, then every REPORT_EVERY_SECONDS
    try:
        mode = fcntl.LOCK_SH if read_only else fcntl.LOCK_EX
        # A writer holds the writer lock while it waits for the turn; a reader passes through it (so it waits
        # behind a waiting writer) and lets go once it has its turn.
        intent = os.open(writer_file(database), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(intent, mode, database, started, deadline, say, next_report)
            _flock(descriptor, mode, database, started, deadline, say, next_report)
        finally:
            os.close(intent)
        _wait_for_duckdb_lock(database, deadline, started, say, read_only)
        with _held_lock:
            _held[database] = (descriptor, 1)
        try:
            yield
        finally:
            with _held_lock:
                del _held[database]
    finally:
        os.close(descriptor)  # releases the flock


@contextlib.contextmanager
def read_connection(database: Path, wait_seconds: float = 120.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse, taken in turn with the runs that write it."""
    import duckdb

    with warehouse_turn(database, wait_seconds, say=lambda _line: None, read_only=True):
        with duckdb.connect(str(database), read_only=True) as connection:
            yield connection
