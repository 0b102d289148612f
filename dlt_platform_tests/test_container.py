"""The container's entrypoint on the host (Docker is not available here) and a Dockerfile that can build."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import psutil

from dlt_platform.settings import PROJECT_ROOT


def test_dockerfile_copies_and_runs_what_exists():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    copies = re.findall(r"^COPY\s+(.+)$", dockerfile, flags=re.MULTILINE)
    assert copies
    for line in copies:
        *sources, _target = shlex.split(line)
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    entrypoint = re.search(r'^ENTRYPOINT\s+\[(.+)\]$', dockerfile, flags=re.MULTILINE).group(1)
    program, command = [part.strip().strip('"') for part in entrypoint.split(",")][:2]
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert program == "/app/.venv/bin/dlt-platform" and "dlt-platform" in scripts
    assert re.search(r"^EXPOSE 3000$", dockerfile, flags=re.MULTILINE) and re.search(r"^USER (?!root)", dockerfile,
                                                                                      flags=re.MULTILINE)
    from dlt_platform.cli import app

    assert command in {c.name or c.callback.__name__ for c in app.registered_commands}
    wrangler = tomllib.loads((PROJECT_ROOT / "wrangler.toml").read_text())
    assert wrangler["containers"][0]["image"] == "./Dockerfile"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(process: subprocess.Popen) -> dict[str, int]:
    found = {}
    for child in psutil.Process(process.pid).children():
        try:
            command = " ".join(child.cmdline())
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue  # a killed child not yet reaped by serve
        for name in ("dagster-webserver", "dagster-daemon"):
            if name in command:
                found[name] = child.pid
    return found


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_runs_webserver_and_daemon_restarts_a_dead_one_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
           "DLT_PLATFORM_DESTINATION": "duckdb"}
    for name in ("DLT_ORCHESTRATOR_URL", "DLT_INTERNAL_TOKEN"):
        env.pop(name, None)
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([str(Path(sys.executable).parent / "dlt-platform"), "serve", "--host", "127.0.0.1",
                              "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        def ui_up():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/dagster/server_info", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(ui_up, 180, "the webserver under /dagster")
        # The public port is the Host-checking guard: a rebinding page's Host is refused, the normal one served.
        foreign = httpx.get(f"http://127.0.0.1:{port}/dagster/server_info", headers={"Host": "evil.example"}, timeout=5)
        assert foreign.status_code == 400
        def both_children():
            children = _children(serve)
            return children if len(children) == 2 else None

        first = _wait(both_children, 30, "both children")
        assert (tmp_path / "dagster" / "dagster.yaml").is_file()
        os.kill(first["dagster-daemon"], signal.SIGKILL)
        def daemon_replaced():
            children = both_children()
            return children if children and children["dagster-daemon"] != first["dagster-daemon"] else None

        restarted = _wait(daemon_replaced, 30, "the daemon to be restarted")
        assert restarted["dagster-webserver"] == first["dagster-webserver"]
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=40) == 0
        for pid in restarted.values():
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        output = (tmp_path / "serve.log").read_text()
        assert "dagster-daemon exited with" in output and "serve: stopped" in output
    finally:
        # A failed assertion must not leave the webserver and daemon behind: end the whole process group.
        try:
            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
