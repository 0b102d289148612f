"""Cross-site requests through the Worker's /dagster proxy, in Debian's chromium against the local stack.

A page served from another loopback port is "same-site" with the Worker (same scheme and host), so the browser
sends the operator's SameSite=Strict session cookie with its requests. That page tries to launch a Dagster run
three ways (an <img> GET carrying a mutation, a text/plain form POST that reads as JSON, a no-cors fetch POST):
each request must reach the Worker with the cookie and be refused, and Dagster must hold no run carrying the
attack's tag. The Dagster UI served through the proxy still works, mutations included, from its own origin.
"""

from __future__ import annotations

import html
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from dlt_platform_tests.e2e.browser_fixtures import screenshot_on_failure

TAG_KEY = "dlt_platform_e2e/cross_site"
CONTROL_QUERY = "query { version }"
RUNS_TAGGED = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
    __typename ... on Runs { results { runId status } } } }"""


def launch_mutation(tag_value: str) -> str:
    """A launchRun of the vendors table, tagged so the test can look for exactly the runs it caused."""
    return ('mutation { launchRun(executionParams: {selector: {repositoryLocationName: "dlt_platform", '
            'repositoryName: "__repository__", jobName: "__ASSET_JOB", '
            'assetSelection: [{path: ["source_cloudflare", "vendor_kv"]}]}, '
            f'executionMetadata: {{tags: [{{key: "{TAG_KEY}", value: "{tag_value}"}}]}}}}) '
            '{ __typename ... on LaunchRunSuccess { run { runId } } } }')


def dagster_runs_tagged(stack, tag_value: str) -> list[dict]:
    data = stack.dagster_graphql(RUNS_TAGGED, {"tags": [{"key": TAG_KEY, "value": tag_value}]})
    return data["data"]["runsOrError"]["results"]


def attack_page(worker_url: str, tag_value: str) -> str:
    mutation = launch_mutation(tag_value)
    graphql = f"{worker_url}/dagster/graphql"
    # text/plain form fields are sent as `name=value`: this name and value make the body a JSON document.
    form_name = json.dumps({"query": mutation, "pad": ""})[:-2]
    body = json.dumps(json.dumps({"query": mutation}))
    return f"""<!doctype html><html><body>
<img id="img" src="{html.escape(graphql)}?query={quote(mutation)}">
<iframe name="sink" style="display:none"></iframe>
<form id="form" method="post" action="{html.escape(graphql)}" enctype="text/plain" target="sink">
  <input type="hidden" name="{html.escape(form_name)}" value='"}}'>
</form>
<script>
  document.getElementById("form").submit();
  fetch({json.dumps(graphql)}, {{method: "POST", mode: "no-cors", credentials: "include",
                                  headers: {{"Content-Type": "text/plain"}}, body: {body}}});
  // The control: a read with the cookie, answered 200 only when the session rides along (401 without it).
  fetch({json.dumps(graphql + "?query=" + quote(CONTROL_QUERY))}, {{mode: "no-cors", credentials: "include"}});
</script>
</body></html>"""


@pytest.fixture
def other_origin() -> Iterator[tuple[str, dict]]:
    """A tiny HTTP server on another loopback port; the test puts the page it serves into `pages['/']`."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  (http.server's name)
            page = pages.get(self.path.split("?")[0])
            self.send_response(200 if page else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((page or "not found").encode())

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def wait_in_browser(page, check, timeout: float, what: str):
    """Like `poll`, but waiting inside Playwright so the page's events (responses) keep being delivered."""
    deadline = time.monotonic() + timeout
    while not (last := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(200)
    return last


def sign_in(page, stack) -> None:
    token = stack.tokens()["DLT_OPERATOR_TOKEN"]
    response = page.goto(f"{stack.worker_url}/admin?token={token}")
    assert response is not None and response.status == 200, f"/admin answered {response and response.status}"


def test_a_page_on_another_port_cannot_launch_runs_with_the_admin_session(live_stack, browser_context, other_origin):
    stack = live_stack
    origin, pages = other_origin
    tag_value = f"attack-{uuid.uuid4()}"
    page = browser_context.new_page()
    with screenshot_on_failure(page, "cross-site-attack"):
        sign_in(page, stack)
        assert any(c["name"] == "dlt_admin" for c in browser_context.cookies(stack.worker_url))

        done = []  # requests of the attack page to the Worker, once finished or failed
        def settled(request):
            if request.url.startswith(f"{stack.worker_url}/"):
                done.append(request)
        page.on("requestfinished", settled)
        page.on("requestfailed", settled)
        pages["/"] = attack_page(stack.worker_url, tag_value)
        page.goto(f"{origin}/")

        # The <img> GET, the form POST, the fetch POST and the control read all reach the Worker.
        wait_in_browser(page, lambda: len(done) >= 4, timeout=20, what="the four cross-site requests to settle")
        control = [r for r in done if quote(CONTROL_QUERY) in r.url]
        attacks = [r for r in done if r not in control]
        assert len(control) == 1 and sorted(r.method for r in attacks) == ["GET", "POST", "POST"], [r.url for r in done]
        # The session cookie went along with this page's requests: without it the read would answer 401.
        assert control[0].response() is not None and control[0].response().status == 200, control[0].failure
        for request in attacks:
            response = request.response()
            if response is None:
                # The browser hides a JSON answer to an <img> (opaque response blocking): Dagster's run list
                # below is the proof for that one.
                assert request.method == "GET", f"{request.method} {request.url}: {request.failure}"
                continue
            assert response.status == 403, f"{request.method} answered {response.status}; it must be refused"

    # Every attack request above has finished, and Dagster creates a launched run before it answers the launch:
    # a run that got through would already be in Dagster's run list.
    assert dagster_runs_tagged(stack, tag_value) == []


def test_the_dagster_ui_through_the_proxy_still_reads_and_launches_from_its_own_origin(live_stack, browser_context):
    stack = live_stack
    tag_value = f"own-{uuid.uuid4()}"
    page = browser_context.new_page()
    with screenshot_on_failure(page, "cross-site-own-origin"):
        sign_in(page, stack)
        graphql_answers = []
        page.on("response", lambda r: graphql_answers.append(r.status)
                if r.url.split("?")[0] == f"{stack.worker_url}/dagster/graphql" and r.request.method == "POST"
                else None)
        page.goto(f"{stack.worker_url}/dagster/runs")
        # The UI's own GraphQL POSTs go through the proxy and are answered.
        wait_in_browser(page, lambda: len(graphql_answers) >= 3, timeout=60,
                        what="the Dagster UI's GraphQL requests through the proxy")
        assert set(graphql_answers) == {200}, graphql_answers
        # A mutation from the UI's origin, as its launchpad sends it, launches.
        result = page.evaluate("""async (query) => {
            const r = await fetch("/dagster/graphql", {method: "POST", headers: {"Content-Type": "application/json"},
                                                       body: JSON.stringify({query, variables: {}})});
            return {status: r.status, body: await r.json()};
        }""", launch_mutation(tag_value))
    assert result["status"] == 200, result
    assert result["body"]["data"]["launchRun"]["__typename"] == "LaunchRunSuccess", result
    run_id = result["body"]["data"]["launchRun"]["run"]["runId"]
    assert [run["runId"] for run in dagster_runs_tagged(stack, tag_value)] == [run_id]
