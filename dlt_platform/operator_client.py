"""The orchestrator Worker's operator API (bearer DLT_OPERATOR_TOKEN), as the CLI and the local stack use it."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from dlt_platform.contract import TERMINAL_STATUSES
from dlt_platform.http import http_client


class OperatorAPIError(RuntimeError):
    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"orchestrator HTTP {status_code} {code}: {message}")
        self.status_code, self.code = status_code, code


class OperatorClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0) -> None:
        if not token:
            raise OperatorAPIError(0, "missing_token", "DLT_OPERATOR_TOKEN is not set")
        self.base_url = base_url.rstrip("/")
        self._http = http_client(base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OperatorClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 202), **kwargs) -> dict:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise OperatorAPIError(0, "unreachable", f"{self.base_url} unreachable ({type(error).__name__})") from None
        if response.status_code not in ok:
            try:
                refusal = response.json()["error"]
                code, message = refusal.get("code", "error"), refusal.get("message", "")
                fields = "; ".join(f"{f['field']}: {f['message']}" for f in refusal.get("fields") or [])
                message = f"{message} ({fields})" if fields else message
            except (ValueError, KeyError, TypeError):
                code, message = "error", response.reason_phrase
            raise OperatorAPIError(response.status_code, code, message)
        return response.json()

    def health(self) -> dict:
        return self._call("GET", "/health", ok=(200, 503))

    def sources(self, include_retired: bool = False) -> list[dict]:
        params = {"include_retired": "1"} if include_retired else {}
        return self._call("GET", "/sources", params=params)["sources"]

    def source(self, source_id: str) -> dict | None:
        try:
            return self._call("GET", f"/sources/{source_id}")
        except OperatorAPIError as error:
            if error.status_code == 404:
                return None
            raise

    def create_source(self, definition: dict, actor: str = "operator") -> dict:
        return self._call("POST", "/sources", json=definition, headers={"X-Actor": actor})

    def update_source(self, source_id: str, version: int, definition: dict, actor: str = "operator") -> dict:
        return self._call(
            "PUT",
            f"/sources/{source_id}",
            json={"version": version, "definition": definition},
            headers={"X-Actor": actor},
        )

    def retire_source(self, source_id: str, actor: str = "operator") -> dict:
        """Disabled for good and gone from Dagster's definitions; its versions and runs are kept."""
        return self._call("DELETE", f"/sources/{source_id}", headers={"X-Actor": actor})

    def request_run(self, source_id: str, idempotency_key: str | None = None, **request) -> str:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = {key: value for key, value in request.items() if value is not None}
        return self._call("POST", f"/sources/{source_id}/runs", json=body, headers=headers)["run_id"]

    def run(self, run_id: str) -> dict:
        return self._call("GET", f"/runs/{run_id}")

    def webhook_stats(self, source_id: str) -> dict:
        """A webhook source's figures: accepted, waiting, loaded, refused by reason, last delivery."""
        return self._call("GET", f"/sources/{source_id}/webhook")

    def retry_run(self, run_id: str) -> dict:
        """A new run of the same request that names `run_id` as the one it retries."""
        return self._call("POST", f"/runs/{run_id}/retry")

    def runs(self, source_id: str | None = None, status: str | None = None, limit: int = 50) -> list[dict]:
        params = {
            key: value
            for key, value in {"source_id": source_id, "status": status, "limit": limit}.items()
            if value is not None
        }
        return self._call("GET", "/runs", params=params)["runs"]

    def wait_for_runs(
        self,
        run_ids: list[str],
        timeout: float = 900.0,
        poll: float = 1.0,
        on_update: Callable[[dict], None] | None = None,
    ) -> dict[str, dict]:
        """Poll until every run is terminal (or the timeout passes); returns the last state of each."""
        deadline = time.monotonic() + timeout
        latest: dict[str, dict] = {}
        while True:
            for run_id in run_ids:
                if run_id in latest and latest[run_id]["status"] in TERMINAL_STATUSES:
                    continue
                run = self.run(run_id)
                if on_update is not None and latest.get(run_id, {}).get("status") != run["status"]:
                    on_update(run)
                latest[run_id] = run
            if all(run["status"] in TERMINAL_STATUSES for run in latest.values()) or time.monotonic() > deadline:
                return latest
            time.sleep(poll)


def sync_sources(client: OperatorClient, definitions: list[dict], actor: str = "local-stack") -> dict[str, str]:
    """Make the Worker hold these definitions: create missing ones, update changed ones. Returns what it did."""
    done: dict[str, str] = {}
    for definition in definitions:
        current = client.source(definition["source_id"])
        if current is None:
            client.create_source(definition, actor)
            done[definition["source_id"]] = "created"
        elif current["definition"] != definition:
            client.update_source(definition["source_id"], current["version"], definition, actor)
            done[definition["source_id"]] = "updated"
        else:
            done[definition["source_id"]] = "unchanged"
    return done
