"""Client of the Worker's internal API (`/internal/*`, bearer DLT_INTERNAL_TOKEN).

Errors are split by what the caller should do: `WorkerUnavailable` (connection error, timeout, 5xx, 429, auth
refused) means "try again later, skip nothing"; `WorkerRejected` (any other 4xx) means this one request can
never succeed as sent. The token is only ever placed in the Authorization header: never in a message or repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from dlt_platform.http import RetryPolicy, http_client, send_with_retries

if TYPE_CHECKING:
    from dlt_platform.settings import Settings


class WorkerError(Exception):
    pass


class WorkerUnavailable(WorkerError):
    """The Worker cannot answer now (down, overloaded, misconfigured token): keep state and retry later."""


class WorkerRejected(WorkerError):
    """The Worker answered with a client error: retrying the same request cannot succeed."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status_code} {code}: {message}")
        self.status_code, self.code = status_code, code


def worker_client_for(settings: Settings, timeout_seconds: float = 10.0) -> WorkerClient:
    """The client of the Worker the settings name (DLT_ORCHESTRATOR_URL, DLT_INTERNAL_TOKEN)."""
    if not settings.orchestrator_url:
        raise WorkerUnavailable("DLT_ORCHESTRATOR_URL is not set")
    return WorkerClient(settings.orchestrator_url, settings.internal_token or "", timeout_seconds=timeout_seconds)


@dataclass
class WorkerClient:
    base_url: str
    token: str = field(repr=False)
    timeout_seconds: float = 10.0
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    # One attempt by default (sensors ask again on their next tick); runs reading deliveries retry 5xx and
    # connection errors with the platform's policy.
    policy: RetryPolicy = RetryPolicy(attempts=1)

    def __post_init__(self) -> None:
        self._http = http_client(
            base_url=self.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=self.timeout_seconds,
            transport=self.transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> Any:
        try:
            request = self._http.build_request(method, path, json=body, params=params)
            response = send_with_retries(self._http, request, self.policy)
        except httpx.HTTPError as error:  # connection refused, timeout, protocol error
            raise WorkerUnavailable(f"{method} {path}: {type(error).__name__}: {error}") from None
        if response.status_code >= 500 or response.status_code in (401, 403, 408, 429):
            raise WorkerUnavailable(f"{method} {path}: HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            refusal = payload.get("error", {}) if isinstance(payload, dict) else {}
            if isinstance(refusal, str):  # the flat form {"error": "...", "reason": "<code>"}
                refusal = {"code": payload.get("reason", ""), "message": refusal}
            raise WorkerRejected(response.status_code, str(refusal.get("code", "")), str(refusal.get("message", "")))
        if payload is None:
            raise WorkerUnavailable(f"{method} {path}: HTTP {response.status_code} without a JSON body")
        return payload

    def get_sources(self) -> dict:
        """GET /internal/sources -> {"sources": [definition, ...]} (validated by the caller)."""
        return self._request("GET", "/internal/sources")

    def register_run(
        self,
        dagster_run_id: str,
        source_id: str,
        trigger: str,
        partition: str | None = None,
        status: str | None = None,
        at: str | None = None,
    ) -> str:
        """POST /internal/runs: idempotent on dagster_run_id; returns the ledger's run_id."""
        body: dict = {
            "dagster_run_id": dagster_run_id,
            "source_id": source_id,
            "trigger": trigger,
            "partition": partition,
        }
        if status is not None:
            body["status"] = status
        if at is not None:
            body["at"] = at
        return str(self._request("POST", "/internal/runs", body)["run_id"])

    def post_status(
        self,
        run_id: str,
        status: str,
        dagster_run_id: str | None = None,
        at: str | None = None,
        message: str | None = None,
        rows_loaded: int | None = None,
        tables: dict[str, int] | None = None,
        alert: bool = False,
        load_jobs: dict | None = None,
    ) -> bool:
        """POST /internal/runs/{run_id}/status; returns whether the ledger applied it (repeats are not errors).
        `alert` asks for an operator alert on a run that did not fail (a load package set aside); `load_jobs`
        ({destination, dataset, budget, tables}) are the load jobs a finished run sent per table."""
        body: dict = {"status": status, **({"alert": True} if alert else {})}
        for name, value in (
            ("dagster_run_id", dagster_run_id),
            ("at", at),
            ("message", message),
            ("rows_loaded", rows_loaded),
            ("tables", tables),
            ("load_jobs", load_jobs),
        ):
            if value is not None:
                body[name] = value
        return bool(self._request("POST", f"/internal/runs/{run_id}/status", body).get("applied"))

    def source_load_jobs(self, source_id: str) -> list[dict]:
        """GET /internal/sources/{source_id}/load-jobs: the tables the source loaded today (UTC), busiest first, each
        {destination, dataset, table, jobs (every source's), source_jobs, runs, last_run_at}."""
        return self._request("GET", f"/internal/sources/{quote(source_id, safe='')}/load-jobs")["tables"]

    def report_load_errors(self, errors: list[dict]) -> None:
        """POST /internal/sources/load-errors: the definitions the code location could not load, replacing the
        previous report ([] clears it)."""
        self._request("POST", "/internal/sources/load-errors", {"errors": errors})

    # --- webhook deliveries (the Worker keeps them in R2 and D1; Dagster loads them) -------------------------

    def webhook_waiting(self) -> dict[str, dict]:
        """GET /internal/webhooks/waiting -> {source_id: {"waiting": n, "oldest_received_at": iso | None}}."""
        sources = self._request("GET", "/internal/webhooks/waiting")["sources"]
        return {source["source_id"]: source for source in sources}

    def webhook_deliveries(
        self, source_id: str, *, hour: str | None = None, after: str | None = None, limit: int = 500
    ) -> dict:
        """One page of delivery documents, ordered by (received_at, delivery_id): the waiting ones, or with
        `hour` (YYYY-MM-DDTHH) every delivery received in that UTC hour. -> {"deliveries": [...], "next": cursor}"""
        params: dict = {"hour": hour} if hour is not None else {"state": "waiting", "limit": limit}
        if after is not None:
            params["after"] = after
        return self._request("GET", f"/internal/webhooks/{quote(source_id, safe='')}/deliveries", params=params)

    def mark_webhook_deliveries_loaded(self, source_id: str, run_id: str, delivery_ids: list[str]) -> int:
        """POST .../deliveries/loaded (at most 1,000 ids a call; idempotent) -> how many were marked now."""
        body = {"run_id": run_id, "delivery_ids": delivery_ids}
        return int(
            self._request("POST", f"/internal/webhooks/{quote(source_id, safe='')}/deliveries/loaded", body)["marked"]
        )
