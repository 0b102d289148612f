"""Cloudflare's KV REST API (client/v4): namespaces, key listing, bulk get and single reads.

Documented shapes: every JSON answer is an envelope {success, errors: [{code, message}], messages, result,
result_info}; key listing pages hold up to 1,000 keys and end when `result_info.cursor` is empty; bulk get
takes up to 100 keys and returns text values only, so binary values are read one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import orjson

from dlt_platform.http import RateBudget, RetryPolicy, http_client, send_with_retries

LIST_PAGE_SIZE = 1000
BULK_GET_SIZE = 100


class CloudflareAPIError(RuntimeError):
    """An API call that failed; the message carries Cloudflare's own error text, never credentials."""

    def __init__(self, status_code: int, message: str) -> None:
        # A refused token is the usual cause of 401/403: name the variable that holds it.
        credentials = " (CLOUDFLARE_API_TOKEN)" if status_code in (401, 403) else ""
        super().__init__(f"Cloudflare API HTTP {status_code}: {message}{credentials}" if status_code else message)
        self.status_code = status_code


def _errors_text(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        errors = body.get("errors") or []
        text = "; ".join(f"{e.get('message')} (code {e.get('code')})" for e in errors if isinstance(e, dict))
        return text or response.reason_phrase
    except ValueError:
        return response.reason_phrase or "no details"


class CloudflareKVClient:
    def __init__(
        self,
        base_url: str,
        account_id: str | None,
        api_token: str | None,
        budget: RateBudget | None = None,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 60.0,
    ) -> None:
        if not account_id:
            raise CloudflareAPIError(0, "CLOUDFLARE_ACCOUNT_ID is not set")
        if not api_token:
            raise CloudflareAPIError(0, "CLOUDFLARE_API_TOKEN is not set")
        self.account_id = account_id
        self.policy = policy
        self.budget = budget or RateBudget(1100, 300.0)
        self._http = http_client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudflareKVClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _namespace_path(self, namespace_id: str) -> str:
        return f"/accounts/{quote(self.account_id, safe='')}/storage/kv/namespaces/{quote(namespace_id, safe='')}"

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        request = self._http.build_request(method, path, **kwargs)
        return send_with_retries(self._http, request, self.policy, self.budget)

    def _json(self, method: str, path: str, **kwargs) -> dict:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise CloudflareAPIError(response.status_code, _errors_text(response))
        body = orjson.loads(response.content)
        if not body.get("success", False):
            raise CloudflareAPIError(response.status_code, _errors_text(response))
        return body

    def list_namespaces(self) -> Iterator[dict]:
        page = 1
        while True:
            body = self._json(
                "GET",
                f"/accounts/{quote(self.account_id, safe='')}/storage/kv/namespaces",
                params={"page": page, "per_page": 100},
            )
            yield from body["result"]
            info = body.get("result_info") or {}
            if not body["result"] or page * info.get("per_page", 100) >= info.get("total_count", 0):
                return
            page += 1

    def list_keys(
        self, namespace_id: str, prefix: str | None = None, cursor: str | None = None, limit: int = LIST_PAGE_SIZE
    ) -> tuple[list[dict], str | None]:
        """One page of keys ({name, expiration?, metadata?}) and the cursor of the next, None at the end."""
        params: dict = {"limit": limit}
        if prefix:
            params["prefix"] = prefix
        if cursor:
            params["cursor"] = cursor
        body = self._json("GET", f"{self._namespace_path(namespace_id)}/keys", params=params)
        next_cursor = (body.get("result_info") or {}).get("cursor") or None
        return body["result"], next_cursor

    def bulk_get(self, namespace_id: str, keys: list[str]) -> dict[str, dict | None] | None:
        """Values with metadata for up to 100 keys; None when the API refuses the batch (a non-text value)."""
        if len(keys) > BULK_GET_SIZE:
            raise ValueError(f"bulk get takes at most {BULK_GET_SIZE} keys, got {len(keys)}")
        response = self._send(
            "POST",
            f"{self._namespace_path(namespace_id)}/bulk/get",
            json={"keys": keys, "type": "text", "withMetadata": True},
        )
        if response.status_code in (400, 415, 422):
            return None
        if response.status_code >= 400:
            raise CloudflareAPIError(response.status_code, _errors_text(response))
        body = orjson.loads(response.content)
        if not body.get("success", False):
            raise CloudflareAPIError(response.status_code, _errors_text(response))
        return body["result"]["values"]

    def get_value(self, namespace_id: str, key: str) -> bytes | None:
        """The raw bytes of one value (any type), None when the key no longer exists."""
        response = self._send("GET", f"{self._namespace_path(namespace_id)}/values/{quote(key, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise CloudflareAPIError(response.status_code, _errors_text(response))
        return response.content

    def get_metadata(self, namespace_id: str, key: str) -> object | None:
        response = self._send("GET", f"{self._namespace_path(namespace_id)}/metadata/{quote(key, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise CloudflareAPIError(response.status_code, _errors_text(response))
        return response.json().get("result")
