"""The BigQuery emulator (`bqemulator`, BigQuery's REST API over DuckDB) as a local process.

It pins its own DuckDB, so it lives in its own environment `.bqemulator/` (installed by `make install`), with
HOME pointed at `.bqemulator/home` where the install put DuckDB's spatial extension. Data is in memory: every
start is an empty warehouse. The tests and `dlt-platform up --warehouse bigquery` start it the same way.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dlt_platform.processes import ProcessError, start_process, stop_process, wait_ready
from dlt_platform.settings import PROJECT_ROOT

EMULATOR_ENV = PROJECT_ROOT / ".bqemulator"
DEFAULT_PROJECT = "local-project"


class EmulatorError(RuntimeError):
    """The emulator is not installed or did not come up; the message says what to run or where its log is."""


@dataclass
class BigQueryEmulator:
    port: int
    project_id: str = DEFAULT_PROJECT
    log_path: Path = PROJECT_ROOT / ".local" / "logs" / "bqemulator.log"
    environment: Path = EMULATOR_ENV
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """What a dlt-platform process needs to load into this emulator (no Google credentials)."""
        return {"BIGQUERY_EMULATOR_HOST": self.url, "GOOGLE_CLOUD_PROJECT": self.project_id}

    def ready(self) -> bool:
        try:
            return (
                httpx.get(f"{self.url}/bigquery/v2/projects/{self.project_id}/datasets", timeout=2).status_code == 200
            )
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 60) -> BigQueryEmulator:
        binary = self.environment / "bin" / "bqemulator"
        if not binary.exists():
            raise EmulatorError(f"the BigQuery emulator is not installed at {self.environment}: run `make install`")
        self.process = start_process(
            [
                str(binary),
                "start",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                str(self.port),
                "--grpc-port",
                "0",
                "--project",
                self.project_id,
                "--log-level",
                "warning",
                "--no-admin",
            ],
            env={**os.environ, "HOME": str(self.environment / "home")},
            log_path=self.log_path,
        )
        try:
            wait_ready("bqemulator", self.process, self.ready, timeout, self.log_path, poll=0.2)
        except ProcessError as error:
            self.stop()
            raise EmulatorError(str(error)) from None
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=15)

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
