"""The one supervisor of the platform's child processes: what `dlt-platform up` starts (wrangler dev, Dagster, the
BigQuery emulator) and what `dlt-platform serve` starts (Dagster's code server, webserver and daemon, the Host guard).

A child started with `own_session` leads a process group of its own: a terminal's Ctrl-C does not reach it
directly, and stopping it ends everything it started (wrangler's workerd, Dagster's code servers). Stopping is
SIGTERM, then SIGKILL after `stop_timeout` seconds. `restart_exited` restarts children that died, at once for an
occasional crash and with a growing pause (up to 30 s) for one that keeps crashing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlt_platform.settings import PROJECT_ROOT


class ProcessError(RuntimeError):
    """A child that exited or did not become ready; the message names it and where its log is."""


@dataclass
class Child:
    command: list[str]
    env: dict[str, str] | None
    log_path: Path | None  # None: the supervisor's own stdout/stderr
    own_session: bool
    process: subprocess.Popen
    exits: list[float] = field(default_factory=list)
    restart_at: float | None = None


def start_process(
    command: list[str],
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    own_session: bool = True,
    cwd: Path = PROJECT_ROOT,
) -> subprocess.Popen:
    if log_path is None:
        return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=own_session)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=own_session,
        )


def send_signal(process: subprocess.Popen, sig: int, own_session: bool = True) -> None:
    """To its whole group when it leads one; nothing when it already ended."""
    if process.poll() is not None:
        return
    try:
        if own_session:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except ProcessLookupError:
        pass


def stop_process(process: subprocess.Popen, timeout: float, own_session: bool = True) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    send_signal(process, signal.SIGTERM, own_session)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send_signal(process, signal.SIGKILL, own_session)
        process.wait()


def wait_ready(
    name: str,
    process: subprocess.Popen,
    ready: Callable[[], bool],
    timeout: float,
    log_path: Path | None = None,
    poll: float = 0.5,
) -> None:
    """Return once `ready()`; a ProcessError naming the log when the process exits first or time runs out."""
    where = f"; see {log_path}" if log_path else ""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise ProcessError(f"{name} exited with {process.returncode}{where}")
        if time.monotonic() > deadline:
            raise ProcessError(f"{name} not ready after {timeout:.0f} s{where}")
        time.sleep(poll)


@dataclass
class Supervisor:
    stop_timeout: float = 30.0
    say: Callable[[str], None] = print
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        return {name: child.process for name, child in self.children.items()}

    def start(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        own_session: bool = True,
    ) -> subprocess.Popen:
        process = start_process(command, env, log_path, own_session)
        self.adopt(name, process, command, env, log_path, own_session)
        return process

    def adopt(
        self,
        name: str,
        process: subprocess.Popen,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        own_session: bool = True,
    ) -> None:
        """Supervise a process started elsewhere (e.g. by BigQueryEmulator.start)."""
        args = process.args
        command = command or ([str(arg) for arg in args] if isinstance(args, (list, tuple)) else [str(args)])
        self.children[name] = Child(command, env, log_path, own_session, process)

    def release(self, name: str) -> subprocess.Popen:
        """Stop supervising `name` and hand its process to the caller (tests that kill it their own way)."""
        return self.children.pop(name).process

    def wait_ready(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        child = self.children[name]
        wait_ready(name, child.process, ready, timeout, child.log_path)

    def restart_exited(self, now: float | None = None) -> None:
        """One supervision step: note children that exited, restart those whose pause is over."""
        now = time.monotonic() if now is None else now
        for name, child in self.children.items():
            if child.restart_at is None and child.process.poll() is not None:
                child.exits = [moment for moment in child.exits if now - moment < 60] + [now]
                pause = restart_pause(len(child.exits))
                self.say(f"{name} exited with {child.process.returncode}; restarting in {pause:.0f} s")
                child.restart_at = now + pause
            if child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.process = start_process(child.command, child.env, child.log_path, child.own_session)
                self.say(f"started {name} (pid {child.process.pid})")

    def stop(self, name: str) -> None:
        child = self.children.pop(name, None)
        if child is not None:
            stop_process(child.process, self.stop_timeout, child.own_session)

    def stop_all(self) -> None:
        """Ask every child to stop at once, then wait for each (SIGKILL for those past the shared timeout)."""
        children = list(self.children.values())
        self.children.clear()
        for child in children:
            send_signal(child.process, signal.SIGTERM, child.own_session)
        deadline = time.monotonic() + self.stop_timeout
        for child in children:
            stop_process(child.process, max(0.1, deadline - time.monotonic()), child.own_session)


def restart_pause(exits_in_the_last_minute: int) -> float:
    """0 s for an occasional crash; up to 30 s when a child keeps crashing (3+ times in a minute)."""
    return 0.0 if exits_in_the_last_minute < 3 else min(30.0, 2.0 ** (exits_in_the_last_minute - 2))
