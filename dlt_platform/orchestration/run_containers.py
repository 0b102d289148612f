"""Every run in its own run container, started through the Worker (a Dagster run launcher).

`launch_run` asks the Worker's internal API (`POST /internal/run-containers`, bearer DLT_INTERNAL_TOKEN) to start
a container named by the run id with the command that executes exactly that run: `dagster api execute_run
<ExecuteRunArgs>` (as dagster-docker's DockerRunLauncher builds it), behind `python -m
dlt_platform.orchestration.run_entrypoint`, which first writes $DAGSTER_HOME/dagster.yaml for the run's
environment (a run container starts with an empty disk). The Worker builds the run's environment from its own
secrets (only those the run's source names); this launcher adds only non-secret settings (RUN_SETTINGS).
In production the Worker starts a container of the runner class of the source's runner.instance_type
(@cloudflare/containers; the answer names the type, kept as a run tag for state and stop requests); locally and in
tests it asks the local run-container host, one process per run. This launcher cannot tell them apart.

`check_run_worker_health` asks the Worker for the container's state, so Dagster's run monitoring fails a run
whose container died; `terminate` asks the Worker to stop it (SIGTERM, then SIGKILL after a grace period).
A run's process is not a child of Dagster's control processes: it outlives their restart, and Dagster sees its
real end when it is back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from dagster import Field, IntSource, StringSource

# No public API: Dagster documents custom run launchers through these (API reference, "Internals: run launchers";
# dagster-docker, dagster-k8s and dagster-aws import the same names, ExecuteRunArgs and ConfigurableClass included);
# no issue yet. Every such import of the run-container path is in this module.
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClassData

from dlt_platform.contract import RUN_ID_TAG, SOURCE_ID_TAG
from dlt_platform.definition_base import DEFAULT_INSTANCE_TYPE
from dlt_platform.orchestration.run_launcher import PlatformRunLauncher
from dlt_platform.settings import CONTAINER_MARKER_ENV

# "1" sends every run to a run container, "0" keeps runs in this process's children (Dagster's default launcher
# with the boot-id rule, run_launcher.py). Unset: run containers in the deployed control container
# (DLT_PLATFORM_CONTAINER=1), the default launcher elsewhere (`dagster dev`, tests on a bare instance).
ENABLED_ENV = "DLT_PLATFORM_RUN_CONTAINERS"

# Non-secret settings of the control process a run needs too (the Worker refuses any other name).
RUN_SETTINGS = (
    "DAGSTER_HOME",
    "DLT_PLATFORM_CONFIG",
    "DLT_PLATFORM_DATA_DIR",
    "DLT_PLATFORM_DESTINATION",
    "DLT_PLATFORM_KV_TRANSPORT",
    "DLT_PLATFORM_KV_SHAPING",
    "DLT_PLATFORM_DUCKDB_MEMORY_LIMIT",
    "DLT_PLATFORM_ALLOW_PRIVATE_HOSTS",
    "DLT_PLATFORM_ALLOW_EMBEDDED",
    "DLT_PLATFORM_CONTAINER",
    "BIGQUERY_EMULATOR_HOST",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDFLARE_API_BASE_URL",
    "TZ",
    "LANG",
)
CONTAINER_TAG = "dlt_platform/run_container"
# The instance type the Worker started the run's container as (its source's runner.instance_type): in production the
# runner class the container lives in, so state and stop requests name it.
INSTANCE_TYPE_TAG = "dlt_platform/run_container_instance_type"


class RunContainerError(RuntimeError):
    """The Worker refused or could not start a run's container; the message says why, never a secret."""


def run_containers_enabled(env=os.environ) -> bool:
    value = (env.get(ENABLED_ENV) or "").strip()
    if value in ("0", "1"):
        return value == "1"
    if value:
        raise RunContainerError(f"{ENABLED_ENV}: expected 1 or 0, got '{value[:20]}'")
    return env.get(CONTAINER_MARKER_ENV) == "1"


class RunContainerLauncher(PlatformRunLauncher):
    """Run containers when enabled (ENABLED_ENV); otherwise, and for runs launched without one, the platform's
    default launcher it extends."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        orchestrator_url: str | None = None,
        internal_token: str | None = None,
        stop_grace_seconds: int = 10,
        request_timeout_seconds: int = 30,
    ) -> None:
        self._inst_data = inst_data
        self._orchestrator_url = (orchestrator_url or os.environ.get("DLT_ORCHESTRATOR_URL") or "").rstrip("/")
        self._internal_token = internal_token or os.environ.get("DLT_INTERNAL_TOKEN") or ""
        self._stop_grace_seconds = stop_grace_seconds
        self._timeout = request_timeout_seconds
        self._enabled = run_containers_enabled()
        super().__init__(inst_data=inst_data)

    # --- ConfigurableClass ------------------------------------------------------------------------------------

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {
            "orchestrator_url": Field(
                StringSource, is_required=False, description="The Worker's URL (default: $DLT_ORCHESTRATOR_URL)."
            ),
            "internal_token": Field(
                StringSource,
                is_required=False,
                description="Bearer token of the internal API (default: $DLT_INTERNAL_TOKEN).",
            ),
            "stop_grace_seconds": Field(
                IntSource,
                is_required=False,
                default_value=10,
                description="Seconds between SIGTERM and SIGKILL when a run is terminated.",
            ),
            "request_timeout_seconds": Field(IntSource, is_required=False, default_value=30),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> RunContainerLauncher:
        return cls(inst_data=inst_data, **config_value)

    # --- the Worker's internal API ------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict | None = None, params: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        if not self._orchestrator_url or not self._internal_token:
            raise RunContainerError("run containers: DLT_ORCHESTRATOR_URL and DLT_INTERNAL_TOKEN must be set")
        response = httpx.request(
            method,
            f"{self._orchestrator_url}{path}",
            json=body,
            params=params,
            timeout=self._timeout,
            headers={"Authorization": f"Bearer {self._internal_token}"},
        )
        try:
            document = response.json()
        except ValueError:
            document = {}
        return response.status_code, document if isinstance(document, dict) else {}

    # --- RunLauncher --------------------------------------------------------------------------------------------

    def launch_run(self, context: LaunchRunContext) -> None:
        if not self._enabled:
            super().launch_run(context)
            return
        run = context.dagster_run
        if run.job_code_origin is None:
            raise RunContainerError(f"run {run.run_id}: no code origin to start it from")
        command = run_container_command(
            ExecuteRunArgs(job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=None).get_command_args()
        )
        settings = {name: os.environ[name] for name in RUN_SETTINGS if os.environ.get(name)}
        settings["DAGSTER_HOME"] = os.environ.get("DAGSTER_HOME") or settings.get("DAGSTER_HOME", "")
        body = {
            "dagster_run_id": run.run_id,
            "run_id": run.tags.get(RUN_ID_TAG),
            "source_id": run.tags.get(SOURCE_ID_TAG),
            "command": command,
            "settings": {name: value for name, value in settings.items() if value},
        }
        try:
            status, document = self._call("POST", "/internal/run-containers", body)
        except httpx.HTTPError as error:
            raise RunContainerError(f"run containers: the Worker did not answer ({type(error).__name__})") from None
        if status not in (200, 201):
            message = (document.get("error") or {}).get("message") or f"HTTP {status}"
            raise RunContainerError(f"run containers: the Worker refused to start run {run.run_id}: {message}")
        instance_type = str(document.get("instance_type") or DEFAULT_INSTANCE_TYPE)
        self._instance.add_run_tags(run.run_id, {CONTAINER_TAG: run.run_id, INSTANCE_TYPE_TAG: instance_type})
        self._instance.report_engine_event(
            f"run container {run.run_id} ({instance_type}) started through the Worker", run, cls=self.__class__
        )

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        if CONTAINER_TAG not in run.tags:
            return super().check_run_worker_health(run)
        try:
            status, document = self._call(
                "GET", f"/internal/run-containers/{run.run_id}", params=instance_type_param(run.tags)
            )
        except (httpx.HTTPError, RunContainerError) as error:
            # Dagster fails a run on any answer but RUNNING or SUCCESS: the Worker being out of reach for a while
            # says nothing about the run's container; the next poll asks again.
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"the Worker did not answer ({type(error).__name__})")
        if status != 200:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"the Worker answered HTTP {status}")
        return health_of(document)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or CONTAINER_TAG not in run.tags:
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        try:
            status, document = self._call(
                "POST",
                f"/internal/run-containers/{run_id}/stop",
                {"grace_seconds": self._stop_grace_seconds, "reason": "terminate requested in Dagster"},
                params=instance_type_param(run.tags),
            )
        except (httpx.HTTPError, RunContainerError) as error:
            self._instance.report_engine_event(f"stopping the run container failed: {error}", run, cls=self.__class__)
            return False
        return status == 202 and document.get("status") == "running"


def instance_type_param(tags: Mapping[str, str]) -> dict[str, str]:
    """?instance_type= of a run's state and stop requests; none for a run started before sizes (the default)."""
    return {"instance_type": tags[INSTANCE_TYPE_TAG]} if tags.get(INSTANCE_TYPE_TAG) else {}


def health_of(state: dict) -> CheckRunHealthResult:
    """A run container's state (running, exited with a code, not found) as Dagster's worker status."""
    if state.get("status") == "running":
        return CheckRunHealthResult(WorkerStatus.RUNNING)
    if state.get("status") == "exited":
        code = state.get("exit_code")
        if code == 0:
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run container exited with code {code} ({state.get('reason') or 'unknown reason'})",
        )
    return CheckRunHealthResult(WorkerStatus.NOT_FOUND, "the Worker knows no run container for this run")


def run_container_command(execute_run_args: Sequence[str]) -> list[str]:
    """The entrypoint of a run container: run_entrypoint.py, then Dagster's own command for the run."""
    return [sys.executable, "-m", "dlt_platform.orchestration.run_entrypoint", *execute_run_args]
