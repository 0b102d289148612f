"""SIGTERM to `dlt-platform up` (a service manager, `kill`, a CI timeout) stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from dlt_platform.local.loopback import free_port
from dlt_platform.settings import PROJECT_ROOT


def command_line(process: psutil.Process) -> str:
    """Its command line, or "" for one that ended (or became a zombie) since it was listed."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def test_sigterm_stops_wrangler_and_dagster(tmp_path):
    env = {**os.environ, "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data")}
    for name in ("DAGSTER_PG_URL", "DLT_ORCHESTRATOR_URL", "DLT_INTERNAL_TOKEN"):
        env.pop(name, None)
    up = subprocess.Popen([str(Path(sys.executable).parent / "dlt-platform"), "up", "--worker-port", str(free_port()),
                           "--dagster-port", str(free_port()), "--sample-api-port", str(free_port()),
                           "--state-dir", str(tmp_path / "state")],
                          cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True)
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and up.poll() is None:
            started = psutil.Process(up.pid).children(recursive=True)
            commands = " ".join(command_line(p) for p in started)
            # Both halves of the stack are up: wrangler dev (workerd) and serve's webserver and daemon.
            if "workerd" in commands and "dagster-webserver" in commands and "dagster-daemon" in commands:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"the stack did not start: {up.stdout.read().decode() if up.poll() is not None else ''}")
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=90)  # raises when up ignores the signal
        gone, alive = psutil.wait_procs(started, timeout=30)
        assert not alive, f"still running after SIGTERM to up: {[' '.join(p.cmdline()) for p in alive]}"
    finally:
        for process in [psutil.Process(up.pid), *started] if up.poll() is None else started:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
