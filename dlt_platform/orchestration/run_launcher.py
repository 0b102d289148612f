"""Dagster's DefaultRunLauncher, plus the worker health check that run monitoring needs to end crashed runs.

With the default launcher a run worker is a child process of this container's Dagster; Dagster's run monitoring
can only fail a STARTED run whose worker died if the launcher answers `check_run_worker_health`, which the
default launcher does not. `dlt-platform serve` gives every start of the container an id (DLT_PLATFORM_BOOT_ID)
and this launcher tags each run with the id it was launched under. A run tagged with another start's id cannot
have a live worker: the container (and its disk and processes) was replaced, so the worker is reported FAILED
and run monitoring marks the run failed. Runs without the tag, or launched outside `serve`, report RUNNING,
which leaves them to Dagster's own checks (start and cancel timeouts).

"""

from __future__ import annotations

from dagster import DefaultRunLauncher

# No public API: Dagster documents custom launchers here (API reference, "Internals: run launchers"); no issue yet.
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus

from dlt_platform.settings import Settings

BOOT_ID_ENV = "DLT_PLATFORM_BOOT_ID"
BOOT_TAG = "dlt_platform/boot_id"


class PlatformRunLauncher(DefaultRunLauncher):
    def launch_run(self, context: LaunchRunContext) -> None:
        boot_id = Settings.from_env().boot_id
        if boot_id:
            self._instance.add_run_tags(context.dagster_run.run_id, {BOOT_TAG: boot_id})
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        launched_under, current = run.tags.get(BOOT_TAG), Settings.from_env().boot_id
        if launched_under and current and launched_under != current:
            return CheckRunHealthResult(
                WorkerStatus.FAILED, "the container restarted since this run was launched; its worker is gone"
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING)
