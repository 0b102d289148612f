"""The local run-container host as the Worker uses it: a real host process on loopback, real child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from dlt_platform.local.loopback import free_port
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform_tests.waiting import poll

TOKEN = "host-test-token"



@pytest.fixture(scope="module")
def host(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("run-logs")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "dlt_platform.local.run_container_host", "--port", str(port),
                                "--log-dir", str(log_dir), "--grace-seconds", "1"],
                               env={**os.environ, "DLT_INTERNAL_TOKEN": TOKEN}, cwd=PROJECT_ROOT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)

    def answers() -> bool:
        try:
            return client.get("/containers/none").status_code == 404
        except httpx.HTTPError:
            return False

    poll(answers, timeout=30, interval=0.1, what="the run-container host to answer")
    yield client, log_dir
    process.terminate()
    assert process.wait(timeout=30) == 0
    client.close()


def exited(client: httpx.Client, name: str):
    state = client.get(f"/containers/{name}").json()
    return state if state["status"] == "exited" else None


def test_a_run_gets_exactly_its_environment_and_its_exit_code(host, tmp_path):
    client, log_dir = host
    probe = tmp_path / "env.json"
    script = f"import json, os; json.dump(dict(os.environ), open({str(probe)!r}, 'w')); raise SystemExit(3)"
    response = client.post("/containers/run-env/start",
                           json={"command": [sys.executable, "-c", script], "env": {"ONLY_THIS": "value"},
                                 "instance_type": "standard-2"})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "running"
    state = poll(lambda: exited(client, "run-env"), timeout=30, interval=0.1, what="the run to exit")
    # The size the Worker asked for is recorded and answered (a local process cannot be given it).
    assert state == {"name": "run-env", "status": "exited", "exit_code": 3, "reason": "exit",
                     "instance_type": "standard-2"}
    seen = json.loads(probe.read_text())
    # The host's own variables (its token above all) never reach a run; only what it was given and the basics.
    assert TOKEN not in json.dumps(seen)
    # Python itself may add LC_CTYPE (PEP 538 locale coercion) in the child.
    assert set(seen) - {"LC_CTYPE"} == {"ONLY_THIS", "PATH", "HOME"}
    assert seen["ONLY_THIS"] == "value"
    assert "run-env as instance type standard-2" in (log_dir / "run-env.log").read_text()


def test_a_running_name_is_not_started_twice_and_stop_kills_after_the_grace(host, tmp_path):
    client, _ = host
    marker = tmp_path / "started"
    # Ignores SIGTERM, so only the SIGKILL after the grace ends it.
    script = (f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"pathlib.Path({str(marker)!r}).write_text('x'); time.sleep(600)")
    command = {"command": [sys.executable, "-c", script], "env": {}}
    assert client.post("/containers/run-stubborn/start", json=command).status_code == 201
    poll(marker.exists, timeout=30, interval=0.1, what="the run to start")
    again = client.post("/containers/run-stubborn/start", json=command)
    assert again.status_code == 200 and again.json()["status"] == "running"
    # No instance type asked for: the default, as the Worker's.
    assert again.json()["instance_type"] == "standard-1"
    assert client.post("/containers/run-stubborn/stop", json={"grace_seconds": 0.5}).status_code == 202
    state = poll(lambda: exited(client, "run-stubborn"), timeout=30, interval=0.1, what="the run to be killed")
    assert state["exit_code"] == -9 and state["reason"] == "stopped"


def test_sigterm_ends_a_run_that_honours_it(host):
    client, _ = host
    command = {"command": [sys.executable, "-c", "import time; time.sleep(600)"], "env": {}}
    assert client.post("/containers/run-polite/start", json=command).status_code == 201
    assert client.post("/containers/run-polite/stop", json={"grace_seconds": 30}).status_code == 202
    state = poll(lambda: exited(client, "run-polite"), timeout=20, interval=0.1, what="the run to stop")
    assert state["exit_code"] == -15


def test_refusals_name_the_field_and_unknown_names_are_not_found(host):
    client, _ = host
    assert client.get("/containers/never-started").json() == {"name": "never-started", "status": "not_found"}
    assert client.post("/containers/never-started/stop", json={}).status_code == 404
    bad = client.post("/containers/x/start", json={"command": "echo hi", "env": {}})
    assert bad.status_code == 400 and bad.json()["message"].startswith("command:")
    bad = client.post("/containers/x/start", json={"command": ["true"], "env": {"1BAD": "v"}})
    assert bad.status_code == 400 and bad.json()["message"].startswith("env:")
    bad = client.post("/containers/x/start", json={"command": ["true"], "env": {}, "instance_type": "standard-9"})
    assert bad.status_code == 400
    assert bad.json()["message"] == "instance_type: expected one of lite, basic, standard-1, standard-2, standard-3, " \
                                    "standard-4"
    missing = client.post("/containers/x/start", json={"command": ["/no/such/program"], "env": {}})
    assert missing.status_code == 422 and missing.json()["message"].startswith("command:")
    unauthorized = httpx.get(f"{client.base_url}/containers/x", headers={"Authorization": "Bearer wrong"})
    assert unauthorized.status_code == 401
