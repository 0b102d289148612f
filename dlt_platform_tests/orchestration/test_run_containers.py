"""The run-container launcher on a real Dagster instance (the repository's dagster.yaml), and the run container's
entrypoint as the host runs it. The whole path (Worker, host, daemon) is in e2e/test_run_containers.py."""

from __future__ import annotations

import shutil
import subprocess
import sys

import dagster as dg
import pytest

from dlt_platform.orchestration.run_containers import (
    ENABLED_ENV,
    RunContainerError,
    RunContainerLauncher,
    health_of,
    run_container_command,
    run_containers_enabled,
)
from dlt_platform.orchestration.run_launcher import PlatformRunLauncher
from dlt_platform.settings import PROJECT_ROOT


@pytest.fixture
def instance(tmp_path, monkeypatch):
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(ENABLED_ENV, "1")
    monkeypatch.setenv("DLT_ORCHESTRATOR_URL", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("DLT_INTERNAL_TOKEN", "launcher-test-token")
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_the_instance_file_selects_the_run_container_launcher(instance):
    launcher = instance.run_launcher
    assert isinstance(launcher, RunContainerLauncher) and isinstance(launcher, PlatformRunLauncher)
    assert launcher.supports_check_run_worker_health


def test_a_worker_out_of_reach_is_not_a_dead_run_but_a_dead_container_is(instance):
    @dg.op
    def nothing():
        return None

    @dg.job
    def probe_job():
        nothing()

    run = instance.create_run_for_job(probe_job, tags={"dlt_platform/run_container": "x"})
    # Dagster fails a run on any worker status but RUNNING or SUCCESS: an unreachable Worker must not do that.
    health = instance.run_launcher.check_run_worker_health(run)
    assert health.status.value == "RUNNING"
    assert "did not answer" in health.msg
    assert health_of({"status": "exited", "exit_code": 0}).status.value == "SUCCESS"
    failed = health_of({"status": "exited", "exit_code": -9, "reason": "exit"})
    assert failed.status.value == "FAILED" and "code -9" in failed.msg
    assert health_of({"status": "not_found"}).status.value == "NOT_FOUND"
    assert health_of({"status": "running"}).status.value == "RUNNING"


def test_the_switch_takes_1_or_0_and_defaults_by_the_container_marker():
    assert run_containers_enabled({ENABLED_ENV: "1"}) and not run_containers_enabled({ENABLED_ENV: "0"})
    assert run_containers_enabled({"DLT_PLATFORM_CONTAINER": "1"})
    assert not run_containers_enabled({})
    with pytest.raises(RunContainerError, match=f"^{ENABLED_ENV}: expected 1 or 0"):
        run_containers_enabled({ENABLED_ENV: "yes"})


def test_the_entrypoint_writes_the_instance_file_and_runs_dagster_without_the_venv_on_path(tmp_path):
    home = tmp_path / "dagster_home"
    # A run container's environment: what the Worker gave it, and a PATH without this interpreter's scripts.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(home)}
    result = subprocess.run(run_container_command(["dagster", "--version"]), env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert dg.__version__ in result.stdout
    assert (home / "dagster.yaml").read_bytes() == (PROJECT_ROOT / "dagster.yaml").read_bytes()


def test_the_entrypoint_imports_nothing_of_dagster_before_the_run_worker_does():
    # The run worker it becomes imports Dagster afresh; importing it here too cost every run about a second of CPU.
    probe = ("import sys, dlt_platform.orchestration.run_entrypoint; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dagster_postgres', 'dlt')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
