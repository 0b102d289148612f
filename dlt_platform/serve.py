"""The Dagster entrypoint of the container (and of the local stack): webserver + daemon, supervised.

In the container it refuses to start without DAGSTER_PG_URL or DLT_ORCHESTRATOR_URL (embedded_refusals). Before
Dagster starts, $DAGSTER_HOME/dagster.yaml is written for this environment (Postgres when DAGSTER_PG_URL is set,
else SQLite; see orchestration/instance.py), the storage is created or migrated, and this start gets an id that
run monitoring uses to end runs whose worker died with a previous start (orchestration/run_launcher.py). The
webserver listens on loopback on an internal port; the public port is served by a guard that refuses foreign
Host headers (host_guard.py). All children log to this process's stdout/stderr. A child that dies is restarted
(processes.Supervisor); SIGTERM or SIGINT stops them all cleanly and exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from dlt_platform.orchestration.instance import prepare_dagster_home
from dlt_platform.orchestration.run_launcher import BOOT_ID_ENV
from dlt_platform.processes import Supervisor
from dlt_platform.settings import ALLOW_EMBEDDED_ENV, CONTAINER_MARKER_ENV, PROJECT_ROOT

STOP_TIMEOUT_SECONDS = 20.0


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(host: str, port: int, webserver_port: int) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return {
        "dagster-webserver": [
            str(bin_dir / "dagster-webserver"),
            "-w",
            workspace,
            "-h",
            "127.0.0.1",
            "-p",
            str(webserver_port),
            "--path-prefix",
            "/dagster",
        ],
        "host-guard": [
            sys.executable,
            "-m",
            "dlt_platform.host_guard",
            host,
            str(port),
            f"http://127.0.0.1:{webserver_port}",
        ],
        "dagster-daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
    }


# `dagster instance migrate` does the same: DagsterInstance.upgrade() brings run, event and schedule storage to
# this Dagster's schema (alembic) and runs the data migrations; on a current schema it changes nothing.
STORAGE_SCRIPT = "import dagster\nwith dagster.DagsterInstance.get() as instance:\n    instance.upgrade()\n"


def create_storage(env: dict) -> None:
    """Create Dagster's storage, or migrate it to this Dagster's schema (`dagster instance migrate`: a new image
    on the Postgres of the previous one), in one process before the webserver and the daemon start: two processes
    creating a fresh SQLite storage at once can both stamp its schema version, after which neither loads
    ("alembic_version has more than one head"). A failure here (Postgres not reachable yet) is left to the
    children, which report it and are restarted."""
    # Its output is not repeated: a storage error can quote the connection string.
    result = subprocess.run(
        [sys.executable, "-c", STORAGE_SCRIPT],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        print(
            f"serve: creating or migrating Dagster's storage failed (exit {result.returncode}); the webserver and "
            "daemon will try again",
            flush=True,
        )


def embedded_refusals(env: dict) -> list[str]:
    """In the deployed container (the Dockerfile sets DLT_PLATFORM_CONTAINER=1), what would silently make it a
    throw-away deployment: no DAGSTER_PG_URL (history on the ephemeral disk) or no DLT_ORCHESTRATOR_URL (the
    sources file baked into the image). One line each; DLT_PLATFORM_ALLOW_EMBEDDED=1 accepts both."""
    if env.get(CONTAINER_MARKER_ENV) != "1" or env.get(ALLOW_EMBEDDED_ENV) == "1":
        return []
    reasons = {
        "DAGSTER_PG_URL": "Dagster's history would live on the container's ephemeral disk",
        "DLT_ORCHESTRATOR_URL": "Dagster would load the sources file baked into the image, not the Worker's",
    }
    return [
        f"serve: {name} is not set: {why}; set it as a Worker secret (docs/deploy.md), or "
        f"{ALLOW_EMBEDDED_ENV}=1 for a throw-away deployment"
        for name, why in reasons.items()
        if not (env.get(name) or "").strip()
    ]


def serve(host: str = "127.0.0.1", port: int = 3000) -> int:
    refusals = embedded_refusals(dict(os.environ))
    for line in refusals:
        print(line, file=sys.stderr, flush=True)
    if refusals:
        return 1
    env = prepare_dagster_home(dict(os.environ))
    create_storage(env)
    env[BOOT_ID_ENV] = uuid.uuid4().hex
    supervisor = Supervisor(stop_timeout=STOP_TIMEOUT_SECONDS, say=lambda text: print(f"serve: {text}", flush=True))
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        supervisor.say(f"{signal.Signals(signum).name} received, stopping")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The children share this process's group: whoever ends the container (or the local stack, which stops
    # this process's group) ends them with it.
    for name, command in children(host, port, free_loopback_port()).items():
        supervisor.start(name, command, env=env, own_session=False)
        supervisor.say(f"started {name} (pid {supervisor.processes[name].pid})")
    while not stopping:
        supervisor.restart_exited()
        time.sleep(0.5)
    supervisor.stop_all()
    supervisor.say("stopped")
    return 0
