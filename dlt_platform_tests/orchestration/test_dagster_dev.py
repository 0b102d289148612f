"""`dagster dev -w workspace.yaml` starts offline with the repo's dagster.yaml and serves the code location."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dlt_platform.local.loopback import free_port
from dlt_platform.settings import PROJECT_ROOT

QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
  __typename ... on RepositoryLocation { repositories { name jobs { name } } } ... on PythonError { message } } } } } }"""



def test_dagster_dev_loads_the_code_location(tmp_path, platform_env):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DLT_PLATFORM_DESTINATION": "duckdb"}
    dagster = Path(sys.executable).parent / "dagster"
    process = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline, entry = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=5)
                entries = response.json()["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    entry = entries[0]
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        assert entry is not None, "the code location did not load within 120 s"
        assert entry["name"] == "dlt_platform"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry["locationOrLoadError"]
        repository = entry["locationOrLoadError"]["repositories"][0]
        assert repository["name"] == "__repository__"
        assert "__ASSET_JOB" in {job["name"] for job in repository["jobs"]}
        assert (home / "storage").is_dir()  # the instance took its SQLite storage from dagster.yaml
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the session this test started: dagster dev and its children
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
