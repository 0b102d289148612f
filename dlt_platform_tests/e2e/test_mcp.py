"""An agent runs the platform through /mcp on the local stack, with the official Python MCP client (`mcp`): validate a
broken definition, fix it, create it, run it to `succeeded`, read its rows per table; without a token, with a wrong
one and with the read-only token's writes it is refused and nothing is stored."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from dlt_platform.contract import TERMINAL_STATUSES
from dlt_platform_tests.e2e.stack_helpers import new_definition, warehouse


def run_in_own_loop(coroutine):
    """asyncio.run in a thread of its own: the browser tests' Playwright (sync API) keeps an event loop running in
    this thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()




def kv_definition(source_id: str, **changes) -> dict:
    return new_definition(source_id, "source_agent", **{"description": "Created by an agent through /mcp.", **changes})


class Agent:
    """A connected MCP session; `call` returns (is_error, the tool's JSON)."""

    def __init__(self, session: ClientSession):
        self.session = session

    async def call(self, name: str, **arguments) -> tuple[bool, dict]:
        result = await self.session.call_tool(name, arguments)
        return bool(result.is_error), json.loads(result.content[0].text)


async def with_agent(url: str, token: str | None, work):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    refused: list[str] = []

    async def keep_refusals(response) -> None:
        # The MCP client reports a non-2xx answer that is not a JSON-RPC error only as "Server returned an error
        # response": keep the status and body, so a failure says what the Worker answered.
        if response.status_code >= 400:
            await response.aread()
            refused.append(f"{response.status_code} {response.text[:500]}")

    async with httpx2.AsyncClient(headers=headers, timeout=30, event_hooks={"response": [keep_refusals]}) as http:
        try:
            async with streamable_http_client(f"{url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await work(Agent(session))
        except Exception as error:
            if not refused:
                raise
            raise AssertionError(f"/mcp answered: {refused}") from error


def stored(stack, source_id: str) -> tuple[int, int]:
    """Rows of the source (0 or 1) and its runs, as the operator API lists them."""
    token = stack.tokens()["DLT_OPERATOR_TOKEN"]
    with httpx.Client(base_url=stack.worker_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        source = client.get(f"/sources/{source_id}")
        runs = client.get("/runs", params={"source_id": source_id}).json()["runs"]
    return (1 if source.status_code == 200 else 0), len(runs)


def test_an_agent_validates_creates_runs_and_reads_rows_through_mcp(stack):
    source_id = f"agent_{int(time.time())}"

    async def flow(agent: Agent) -> dict:
        tools = await agent.session.list_tools()
        assert {"validate_definition", "create_source", "trigger_run", "get_run", "list_runs"} <= {
            tool.name for tool in tools.tools}

        broken = kv_definition(source_id, schedule="hourly", destination={"type": "duckdb", "dataset": "source_agent"})
        is_error, checked = await agent.call("validate_definition", definition=broken)
        assert not is_error and checked["valid"] is False, checked
        fields = {problem["field"] for problem in checked["problems"]}
        assert {"schedule", "destination.table"} <= fields, checked
        assert stored(stack, source_id) == (0, 0)

        fixed = kv_definition(source_id)
        assert (await agent.call("validate_definition", definition=fixed))[1] == {"valid": True, "problems": []}
        is_error, created = await agent.call("create_source", definition=fixed)
        assert not is_error and created["updated_by"] == "mcp", created

        is_error, started = await agent.call("trigger_run", source_id=source_id, idempotency_key=f"{source_id}-1")
        assert not is_error, started
        deadline = time.monotonic() + 300
        while True:
            _, run = await agent.call("get_run", run_id=started["run_id"])
            if run["status"] in TERMINAL_STATUSES or time.monotonic() > deadline:
                return run
            await asyncio.sleep(1)

    run = run_in_own_loop(with_agent(stack.worker_url, stack.tokens()["DLT_OPERATOR_TOKEN"], flow))
    assert run["status"] == "succeeded", run
    assert run["dagster_url"] and run["dagster_url"].endswith(f"/dagster/runs/{run['dagster_run_id']}"), run
    table = f"{source_id}_t"
    [(rows,)] = warehouse(stack, f"select count(*) from source_agent.{table}")
    assert rows > 0 and run["tables"][table] == rows, run


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_mcp_refuses_no_token_and_a_wrong_token(stack, token):
    with httpx.Client(timeout=30) as client:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        answer = client.post(f"{stack.worker_url}/mcp", headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "create_source", "arguments": {"definition": kv_definition("agent_never")}}})
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"
    assert stored(stack, "agent_never") == (0, 0)


def test_the_read_only_token_reads_through_mcp_and_its_writes_are_refused(stack, operator):
    source_id = f"agent_ro_{int(time.time())}"
    operator.create_source(kv_definition(source_id))

    async def flow(agent: Agent) -> None:
        is_error, listed = await agent.call("list_sources")
        assert not is_error and source_id in {source["source_id"] for source in listed["sources"]}
        _, source = await agent.call("get_source", source_id=source_id)
        for name, arguments in [
            ("create_source", {"definition": kv_definition(f"{source_id}_new")}),
            ("update_source", {"source_id": source_id, "version": source["version"],
                               "definition": kv_definition(source_id, description="changed")}),
            ("trigger_run", {"source_id": source_id}),
            ("retire_source", {"source_id": source_id}),
        ]:
            is_error, answer = await agent.call(name, **arguments)
            assert is_error and answer["error"]["code"] == "read_only", (name, answer)

    run_in_own_loop(with_agent(stack.worker_url, stack.tokens()["DLT_READONLY_TOKEN"], flow))
    assert stored(stack, source_id) == (1, 0)
    assert stored(stack, f"{source_id}_new") == (0, 0)
    token = stack.tokens()["DLT_OPERATOR_TOKEN"]
    with httpx.Client(base_url=stack.worker_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        source = client.get(f"/sources/{source_id}").json()
    assert source["version"] == 1 and source["retired_at"] is None, source
