"""The Dagster entrypoint of the container (and of the local stack): code server, webserver + daemon, supervised.

In the container it refuses to start without DAGSTER_PG_URL or DLT_ORCHESTRATOR_URL (embedded_refusals). Before
Dagster starts, $DAGSTER_HOME/dagster.yaml is written for this environment (Postgres when DAGSTER_PG_URL is set,
else SQLite; see orchestration/instance.py), the storage is created or migrated, and this start gets an id that
run monitoring uses to end runs whose worker died with a previous start (orchestration/run_launcher.py).

The code location is served by one code server (`dagster code-server start`) that the webserver and the daemon
share through a workspace file of this start ($DAGSTER_HOME/workspace.yaml, a `grpc_server` entry). Given the
repository's workspace.yaml (a `python_module` entry), each of them started a code server of its own, and the daemon
replaced its own every 60 s (Dagster's daemon reloads its workspace on that interval, and a code server it started
is reloaded by starting a new one): about 4 s of CPU a minute in the container, and one more ~165 MB process. The
webserver's "Reload" (and the Worker's reload after a definition change) reloads the shared server's code; the
daemon sees the new definitions at its next workspace refresh, as before.

The webserver listens on loopback on an internal port; the public port is served by a guard that refuses foreign
Host headers (host_guard.py). All children log to this process's stdout/stderr. A child that dies is restarted
(processes.Supervisor); SIGTERM or SIGINT stops them all cleanly and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from dlt_platform.contract import REPOSITORY_LOCATION
from dlt_platform.orchestration.instance import prepare_dagster_home
from dlt_platform.orchestration.run_launcher import BOOT_ID_ENV
from dlt_platform.processes import Supervisor
from dlt_platform.settings import ALLOW_EMBEDDED_ENV, CONTAINER_MARKER_ENV, PROJECT_ROOT

STOP_TIMEOUT_SECONDS = 20.0
# How long the webserver and the daemon wait for the code server to load the code location (a cold container on a
# small instance imports Dagster and dlt in well under this).
CODE_SERVER_START_SECONDS = 180.0


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shared_workspace(dagster_home: Path, code_server_port: int) -> Path:
    """The workspace file of this start: the code location served on loopback by the shared code server (JSON,
    which YAML reads as it is)."""
    path = dagster_home / "workspace.yaml"
    entry = {"grpc_server": {"host": "127.0.0.1", "port": code_server_port, "location_name": REPOSITORY_LOCATION}}
    path.write_text(json.dumps({"load_from": [entry]}, indent=2) + "\n")
    return path


def code_server(port: int) -> list[str]:
    """`dagster code-server start` for the module the repository's workspace.yaml names. Runs it launches start
    from its origin: this Python (`--use-python-environment-entry-point`) and the project folder."""
    return [
        str(Path(sys.executable).parent / "dagster"),
        "code-server",
        "start",
        "-m",
        "dlt_platform.definitions",
        "-a",
        "defs",
        "-d",
        str(PROJECT_ROOT),
        "--location-name",
        REPOSITORY_LOCATION,
        "--use-python-environment-entry-point",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--log-level",
        "warning",
    ]


def children(host: str, port: int, webserver_port: int, workspace: Path) -> dict[str, list[str]]:
    """The webserver, its Host guard and the daemon, reading the code location from `workspace`."""
    bin_dir = Path(sys.executable).parent
    return {
        "dagster-webserver": [
            str(bin_dir / "dagster-webserver"),
            "-w",
            str(workspace),
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
        "dagster-daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
    }


def wait_for_code_server(supervisor: Supervisor, port: int, timeout: float, stopping: Callable[[], bool]) -> None:
    """Until the code server accepts connections: it listens only once the code location has loaded, so the
    webserver and the daemon find it loaded at their first look. A code server that exits or stays silent is
    reported in one line and left to the supervisor, which restarts it; the others start anyway."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        process = supervisor.processes["dagster-code-server"]
        if process.poll() is not None:
            supervisor.say(f"dagster-code-server exited ({process.returncode}) while loading the code location")
            return
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    if not stopping():
        supervisor.say(f"dagster-code-server did not listen within {timeout:.0f} s; starting the others anyway")


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
    code_server_port = free_loopback_port()
    workspace = shared_workspace(Path(env["DAGSTER_HOME"]), code_server_port)
    supervisor.start("dagster-code-server", code_server(code_server_port), env=env, own_session=False)
    supervisor.say(f"started dagster-code-server (pid {supervisor.processes['dagster-code-server'].pid})")
    wait_for_code_server(supervisor, code_server_port, CODE_SERVER_START_SECONDS, lambda: stopping)
    for name, command in children(host, port, free_loopback_port(), workspace).items():
        supervisor.start(name, command, env=env, own_session=False)
        supervisor.say(f"started {name} (pid {supervisor.processes[name].pid})")
    while not stopping:
        supervisor.restart_exited()
        time.sleep(0.5)
    supervisor.stop_all()
    supervisor.say("stopped")
    return 0
