"""The local run-container host: one process per run, on loopback, with the start/state/stop contract of a
Cloudflare run container (worker/src/run_containers.ts talks to it when RUN_CONTAINER_HOST_URL is set).

wrangler dev cannot run containers without Docker, so locally (and in tests) the Worker asks this host instead:
- `POST /containers/<name>/start` {"command": [...], "env": {...}, "instance_type": "standard-1"} starts `command`
  with exactly `env` plus the host's PATH and HOME (so a run sees only what the Worker gave it, as in a container);
  a name already running answers 200 with its state and starts nothing (a repeated launch is not a second run);
  `instance_type` (the run's source's runner.instance_type, default standard-1) is recorded and answered, not
  enforced: a local process gets no vCPU or memory limit;
- `GET /containers/<name>` answers {"status": "running", "instance_type": ...} or {"status": "exited",
  "exit_code": N, "reason": ..., "instance_type": ...}; a name never started answers 404 {"status": "not_found"};
- `POST /containers/<name>/stop` {"grace_seconds": S} sends SIGTERM to the process group, then SIGKILL after S.
Every request needs `Authorization: Bearer <DLT_INTERNAL_TOKEN>` (the host's own environment), as the Worker's
internal API does. The processes are this host's children, not Dagster's: they outlive a restart of Dagster's
control processes, as a run container outlives the control container. Each one logs to <log_dir>/<name>.log.
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
import signal
import subprocess
import sys
import threading
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from dlt_platform.definition_base import DEFAULT_INSTANCE_TYPE, InstanceType
from dlt_platform.local.loopback import JSONHandler, LoopbackServer
from dlt_platform.settings import PROJECT_ROOT

TOKEN_ENV = "DLT_INTERNAL_TOKEN"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# What every process needs to find programs and a home, as a container image provides them.
BASICS = ("PATH", "HOME")
DEFAULT_GRACE_SECONDS = 10.0
INSTANCE_TYPES: tuple[str, ...] = typing.get_args(InstanceType)


class RequestError(ValueError):
    """A refused request: the message names the field."""


@dataclass
class RunProcess:
    name: str
    process: subprocess.Popen
    instance_type: str = DEFAULT_INSTANCE_TYPE
    exit_code: int | None = None
    # "exit" when the command ended by itself, "stopped" when a stop request ended it (Cloudflare's onStop reasons
    # are "exit" and "runtime_signal").
    reason: str | None = None
    stop_requested: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    def state(self) -> dict:
        if self.exit_code is None:
            return {
                "name": self.name,
                "status": "running",
                "pid": self.process.pid,
                "instance_type": self.instance_type,
            }
        return {
            "name": self.name,
            "status": "exited",
            "exit_code": self.exit_code,
            "reason": self.reason,
            "instance_type": self.instance_type,
        }


class RunContainerHost:
    def __init__(self, log_dir: Path, cwd: Path = PROJECT_ROOT) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self._lock = threading.Lock()
        self._runs: dict[str, RunProcess] = {}

    def start(
        self, name: str, command: list[str], env: dict[str, str], instance_type: str = DEFAULT_INSTANCE_TYPE
    ) -> tuple[bool, dict]:
        """Start `command` as `name` unless a process of that name is running; (started, state). The instance type
        is recorded only: a local process has the machine's CPU and memory."""
        with self._lock:
            existing = self._runs.get(name)
            if existing and existing.exit_code is None:
                return False, existing.state()
            self.log_dir.mkdir(parents=True, exist_ok=True)
            basics = {key: os.environ[key] for key in BASICS if key in os.environ}
            with open(self.log_dir / f"{name}.log", "ab") as log:
                log.write(
                    f"run-container host: {name} as instance type {instance_type} (not enforced locally)\n".encode()
                )
                log.flush()
                process = subprocess.Popen(
                    command,
                    env={**basics, **env},
                    cwd=self.cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            run = RunProcess(name, process, instance_type)
            self._runs[name] = run
        threading.Thread(target=self._reap, args=(run,), daemon=True).start()
        return True, run.state()

    def _reap(self, run: RunProcess) -> None:
        code = run.process.wait()
        run.reason = "stopped" if run.stop_requested else "exit"
        run.exit_code = code
        run.ended.set()

    def state(self, name: str) -> dict | None:
        run = self._runs.get(name)
        return run.state() if run else None

    def stop(self, name: str, grace_seconds: float) -> dict | None:
        """SIGTERM to the process group now, SIGKILL after the grace period if it is still there."""
        run = self._runs.get(name)
        if run is None:
            return None
        if run.exit_code is None:
            run.stop_requested = True
            self._signal(run, signal.SIGTERM)
            threading.Thread(target=self._kill_after, args=(run, grace_seconds), daemon=True).start()
        return run.state()

    def _kill_after(self, run: RunProcess, grace_seconds: float) -> None:
        if not run.ended.wait(grace_seconds):
            self._signal(run, signal.SIGKILL)

    @staticmethod
    def _signal(run: RunProcess, sig: int) -> None:
        try:
            os.killpg(run.process.pid, sig)
        except ProcessLookupError:
            pass

    def stop_all(self, grace_seconds: float) -> None:
        for name in list(self._runs):
            self.stop(name, grace_seconds)
        deadline = time.monotonic() + grace_seconds + 5
        for run in list(self._runs.values()):
            run.ended.wait(max(0.0, deadline - time.monotonic()))


def parse_start(body: bytes) -> tuple[list[str], dict[str, str], str]:
    try:
        document = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise RequestError("body: not JSON") from None
    if not isinstance(document, dict):
        raise RequestError("body: expected a JSON object")
    command, env = document.get("command"), document.get("env", {})
    if not isinstance(command, list) or not command or not all(isinstance(part, str) and part for part in command):
        raise RequestError("command: expected a non-empty list of non-empty strings")
    if not isinstance(env, dict) or not all(isinstance(value, str) for value in env.values()):
        raise RequestError("env: expected an object of strings")
    for key in env:
        if not ENV_NAME.match(key):
            raise RequestError(f"env: '{key[:64]}' is not a variable name")
    instance_type = document.get("instance_type", DEFAULT_INSTANCE_TYPE)
    if instance_type not in INSTANCE_TYPES:
        raise RequestError(f"instance_type: expected one of {', '.join(INSTANCE_TYPES)}")
    return command, env, instance_type


def parse_grace(body: bytes) -> float:
    try:
        document = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise RequestError("body: not JSON") from None
    grace = document.get("grace_seconds", DEFAULT_GRACE_SECONDS) if isinstance(document, dict) else None
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= 600:
        raise RequestError("grace_seconds: expected a number of seconds from 0 to 600")
    return float(grace)


class RunContainerHandler(JSONHandler):
    server: LoopbackServer[HostOwner]

    @property
    def host(self) -> RunContainerHost:
        return self.server.owner.host

    def _route(self) -> tuple[str, str] | None:
        """(name, action) of /containers/<name>[/<action>], after the bearer check; None when answered."""
        token = self.server.owner.token
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            self.read_body()
            self.send_body(401, {"error": "unauthorized", "message": "missing or wrong bearer token"})
            return None
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) not in (2, 3) or parts[0] != "containers" or not NAME.match(parts[1]):
            self.read_body()
            self.send_body(404, {"error": "not_found", "message": "expected /containers/<name>[/start|/stop]"})
            return None
        return parts[1], parts[2] if len(parts) == 3 else ""

    def do_GET(self) -> None:
        route = self._route()
        if route is None:
            return
        name, action = route
        state = self.host.state(name) if not action else None
        if state is None:
            self.send_body(404, {"name": name, "status": "not_found"})
        else:
            self.send_body(200, state)

    def do_POST(self) -> None:
        route = self._route()
        if route is None:
            return
        name, action = route
        body = self.read_body()
        try:
            if action == "start":
                command, env, instance_type = parse_start(body)
                started, state = self.host.start(name, command, env, instance_type)
                self.send_body(201 if started else 200, state)
            elif action == "stop":
                stopped = self.host.stop(name, parse_grace(body))
                self.send_body(404 if stopped is None else 202, stopped or {"name": name, "status": "not_found"})
            else:
                self.send_body(404, {"error": "not_found", "message": "expected /start or /stop"})
        except RequestError as error:
            self.send_body(400, {"error": "validation_failed", "message": str(error)})
        except OSError as error:
            # The command could not be executed (no such program): the start failed, nothing runs.
            self.send_body(422, {"error": "start_failed", "message": f"command: {error.strerror}"})


@dataclass
class HostOwner:
    host: RunContainerHost
    token: str = field(repr=False)


def serve(port: int, log_dir: Path, token: str) -> LoopbackServer[HostOwner]:
    return LoopbackServer(RunContainerHandler, HostOwner(RunContainerHost(log_dir), token), port).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--log-dir", type=Path, default=PROJECT_ROOT / ".local" / "logs" / "runs")
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        help="on SIGTERM, how long the runs get before SIGKILL",
    )
    args = parser.parse_args()
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"run-container host: {TOKEN_ENV} is not set; it is the bearer token the Worker sends", file=sys.stderr)
        raise SystemExit(2)
    server = serve(args.port, args.log_dir, token)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(f"run-container host: listening on {server.url}, logs in {args.log_dir}", flush=True)
    while not stopping.wait(1):
        pass
    server.owner.host.stop_all(args.grace_seconds)
    server.stop()


if __name__ == "__main__":
    main()
