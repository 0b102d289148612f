"""The Dagster entrypoint of the container (and of the local stack): webserver + daemon, supervised.

Both run as child processes logging to this process's stdout/stderr. A child that dies is restarted (with a
growing pause if it keeps dying); SIGTERM or SIGINT stops both cleanly and exits 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlt_platform.settings import PROJECT_ROOT

STOP_TIMEOUT_SECONDS = 20.0


def dagster_home() -> Path:
    """DAGSTER_HOME (default .dagster/), holding the project's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_config = PROJECT_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if instance_config.resolve() != target and (
        not target.exists() or target.read_bytes() != instance_config.read_bytes()
    ):
        shutil.copyfile(instance_config, target)
    return home


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


def children(host: str, port: int) -> list[Child]:
    bin_dir = Path(sys.executable).parent
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return [
        Child("dagster-webserver", [str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", host, "-p", str(port),
                                    "--path-prefix", "/dagster"]),
        Child("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]),
    ]


def serve(host: str = "0.0.0.0", port: int = 3000) -> int:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home())}
    procs = children(host, port)
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
