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
import yaml

from dlt_platform.serve import code_server
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform_tests.deploy_doc import secrets_table


def test_dockerfile_copies_and_runs_what_exists():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    copies = re.findall(r"^COPY\s+(.+)$", dockerfile, flags=re.MULTILINE)
    assert copies
    for line in copies:
        *sources, _target = shlex.split(line)
        if any(word.startswith("--from=") for word in sources):
            continue  # from an earlier build stage, not from the build context
        for source in (word for word in sources if not word.startswith("--")):
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


def _code_servers(process: subprocess.Popen) -> dict[int, str]:
    """Every `dagster api grpc` process under serve: pid -> the command of its parent."""
    found = {}
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            if "dagster api grpc" in " ".join(child.cmdline()):
                found[child.pid] = " ".join(child.parent().cmdline())
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_shared_code_server_serves_what_the_repository_workspace_names():
    # `dagster dev` and `definitions validate` read workspace.yaml; serve's code server must load the same location.
    (entry,) = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())["load_from"]
    named = entry["python_module"]
    command = code_server(4000)
    option = {flag: command[command.index(flag) + 1] for flag in ("-m", "-a", "--location-name")}
    assert option == {"-m": named["module_name"], "-a": named["attribute"], "--location-name": named["location_name"]}


def test_serve_runs_one_code_server_for_webserver_and_daemon_restarts_a_dead_one_and_stops_on_sigterm(tmp_path):
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
        # One code server, the shared one's (dagster code-server start), named by the workspace file of this start;
        # neither the webserver nor the daemon starts one of its own (the daemon would replace its own every 60 s).
        workspace = (tmp_path / "dagster" / "workspace.yaml").read_text()
        assert '"grpc_server"' in workspace and '"location_name": "dlt_platform"' in workspace
        servers = _code_servers(serve)
        assert len(servers) == 1 and "code-server start" in next(iter(servers.values())), servers
        located = httpx.post(f"http://127.0.0.1:{port}/dagster/graphql", json={"query": (
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }")}, timeout=10).json()
        assert located["data"]["workspaceOrError"]["locationEntries"] == [{"name": "dlt_platform", "loadStatus": "LOADED"}]
        os.kill(first["dagster-daemon"], signal.SIGKILL)
        def daemon_replaced():
            children = both_children()
            return children if children and children["dagster-daemon"] != first["dagster-daemon"] else None

        restarted = _wait(daemon_replaced, 30, "the daemon to be restarted")
        assert restarted["dagster-webserver"] == first["dagster-webserver"]
        assert _code_servers(serve) == servers  # the new daemon uses the same code server
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


# --- what the container receives: one list ------------------------------------------------------------------

def _container_ts_variables() -> dict[str, bool]:
    source = (PROJECT_ROOT / "worker" / "src" / "container.ts").read_text()
    block = re.search(r"export const CONTAINER_ENV = \[(.*?)\] as const;", source, flags=re.DOTALL).group(1)
    return {name: required == "true"
            for name, required in re.findall(r'\{ name: "([A-Z0-9_]+)", required: (true|false) \}', block)}


def test_the_container_variables_are_declared_once_and_the_worker_docs_and_env_example_agree():
    from dlt_platform.settings import CONTAINER_ENV, CONTAINER_MARKER_ENV, WORKER_SECRETS

    declared = {variable.name: variable.required for variable in CONTAINER_ENV}
    assert _container_ts_variables() == declared, "worker/src/container.ts CONTAINER_ENV differs from settings.py"
    required_worker = re.search(r"REQUIRED_WORKER_SECRETS = \[([^\]]*)\]",
                                (PROJECT_ROOT / "worker" / "src" / "container.ts").read_text()).group(1)
    assert re.findall(r'"([A-Z_]+)"', required_worker) == [v.name for v in WORKER_SECRETS if v.required]

    table = secrets_table()
    everything = {**declared, **{v.name: v.required for v in WORKER_SECRETS}}
    assert set(table) == set(everything), f"docs/deploy.md secrets table vs settings.py: {set(table) ^ set(everything)}"
    for name, required in everything.items():
        assert (table[name] == "required") == required, f"docs/deploy.md: {name} is {table[name]!r}"

    example = (PROJECT_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert set(declared) <= listed, f".env.example lacks {set(declared) - listed}"
    assert re.search(rf"^\s+{CONTAINER_MARKER_ENV}=1\b", (PROJECT_ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {name: value for name, value in os.environ.items()
            if name not in ("DAGSTER_PG_URL", "DLT_ORCHESTRATOR_URL", "DLT_PLATFORM_ALLOW_EMBEDDED")}
    return subprocess.run([str(Path(sys.executable).parent / "dlt-platform"), "serve", "--port", str(_free_port())],
                          env={**base, "DAGSTER_HOME": str(tmp_path / "dagster"), "DLT_PLATFORM_CONTAINER": "1", **env},
                          capture_output=True, text=True, timeout=60)


def test_serve_in_the_container_refuses_to_start_without_postgres_or_the_orchestrator_url(tmp_path):
    started = time.monotonic()
    neither = _serve(tmp_path)
    assert neither.returncode == 1 and neither.stdout == ""
    lines = neither.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("serve: DAGSTER_PG_URL is not set: ") and "DLT_PLATFORM_ALLOW_EMBEDDED=1" in lines[0]
    assert lines[1].startswith("serve: DLT_ORCHESTRATOR_URL is not set: ")

    secret_url = "postgresql://dagster:pg-secret-value@127.0.0.1:1/dagster"
    no_url = _serve(tmp_path, DAGSTER_PG_URL=secret_url)
    assert no_url.returncode == 1
    assert [line.split(":")[1].strip() for line in no_url.stderr.strip().splitlines()] == [
        "DLT_ORCHESTRATOR_URL is not set"]
    assert "pg-secret-value" not in no_url.stderr
    # Refused before anything was prepared: no Dagster home, no process started.
    assert not (tmp_path / "dagster").exists() and time.monotonic() - started < 30


def test_allow_embedded_lets_a_throw_away_container_start(tmp_path):
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if name not in ("DAGSTER_PG_URL", "DLT_ORCHESTRATOR_URL")}
    env.update(DAGSTER_HOME=str(tmp_path / "dagster"), DLT_PLATFORM_DATA_DIR=str(tmp_path / "data"),
               DLT_PLATFORM_CONTAINER="1", DLT_PLATFORM_ALLOW_EMBEDDED="1")
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([str(Path(sys.executable).parent / "dlt-platform"), "serve", "--port", str(port)],
                             env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: "started dagster-daemon" in (tmp_path / "serve.log").read_text(), 60, "serve to start")
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=40) == 0
        assert "is not set" not in (tmp_path / "serve.log").read_text()
    finally:
        try:
            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
