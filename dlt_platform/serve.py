"""The Dagster entrypoint of the container (and of the local stack): webserver + daemon, supervised.

Before Dagster starts, $DAGSTER_HOME/dagster.yaml is written for this environment (Postgres when DAGSTER_PG_URL
is set, else SQLite; see orchestration/instance.py) and this start gets an id that run monitoring uses to end
runs whose worker died with a previous start (orchestration/run_launcher.py). The webserver listens on loopback
on an internal port; the public port is served by a guard that refuses foreign Host headers (host_guard.py).
All children log to this process's stdout/stderr. A child that dies is restarted (with a growing pause if it
keeps dying); SIGTERM or SIGINT stops them all cleanly and exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dlt_platform.orchestration.instance import prepare_dagster_home
from dlt_platform.orchestration.run_launcher import BOOT_ID_ENV
from dlt_platform.settings import PROJECT_ROOT

STOP_TIMEOUT_SECONDS = 20.0


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict) -> None:
        self.process = subprocess.Popen(self.command, env=env, cwd=PROJECT_ROOT)
        print(f"serve: started {self.name} (pid {self.process.pid})", flush=True)

    def restart_delay(self) -> float:
        """0 s for an occasional crash; up to 30 s when it keeps crashing (3+ times in a minute)."""
        now = time.monotonic()
        self.restarts = [moment for moment in self.restarts if now - moment < 60] + [now]
        return 0.0 if len(self.restarts) < 3 else min(30.0, 2.0 ** (len(self.restarts) - 2))


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(host: str, port: int, webserver_port: int) -> list[Child]:
    bin_dir = Path(sys.executable).parent
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return [
        Child("dagster-webserver", [str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1",
                                    "-p", str(webserver_port), "--path-prefix", "/dagster"]),
        Child("host-guard", [sys.executable, "-m", "dlt_platform.host_guard", host, str(port),
                             f"http://127.0.0.1:{webserver_port}"]),
        Child("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]),
    ]


def create_storage(env: dict) -> None:
    """Create (or migrate) Dagster's storage in one process before the webserver and the daemon start: two
    processes creating a fresh SQLite storage at once can both stamp its schema version, after which neither
    loads ("alembic_version has more than one head"). A failure here (Postgres not reachable yet) is left to
    the children, which report it and are restarted."""
    # Its output is not repeated: a storage error can quote the connection string.
    result = subprocess.run([sys.executable, "-c", "import dagster; dagster.DagsterInstance.get().dispose()"],
                            env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if result.returncode != 0:
        print(f"serve: creating Dagster's storage failed (exit {result.returncode}); the webserver and daemon "
              "will try again", flush=True)


def serve(host: str = "127.0.0.1", port: int = 3000) -> int:
    env = prepare_dagster_home(dict(os.environ))
    create_storage(env)
    env[BOOT_ID_ENV] = uuid.uuid4().hex
    procs = children(host, port, free_loopback_port())
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        print(f"serve: {signal.Signals(signum).name} received, stopping", flush=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in procs:
        child.start(env)
    pending: dict[str, float] = {}
    while not stopping:
        for child in procs:
            if child.process is not None and child.process.poll() is not None and child.name not in pending:
                delay = child.restart_delay()
                print(f"serve: {child.name} exited with {child.process.returncode}; restarting in {delay:.0f} s",
                      flush=True)
                pending[child.name] = time.monotonic() + delay
            if child.name in pending and time.monotonic() >= pending[child.name]:
                del pending[child.name]
                child.start(env)
        time.sleep(0.5)
    for child in procs:
        if child.process is not None and child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in procs:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    print("serve: stopped", flush=True)
    return 0
