"""Browser end-to-end tests (Debian chromium through Playwright) against the local stack.

- the admin page signs in with a token (the token leaves the URL), lists sources, starts a run and shows it
  succeed;
- the Dagster UI shows the asset graph with the lineage source system -> raw snapshot -> table;
- a materialization started in the Dagster UI succeeds, and the Worker's ledger records it (trigger "ui").

Screenshots are kept under dlt_platform_tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page

from dlt_platform.config import load_sources_file
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform_tests.e2e.browser_fixtures import dismiss_dagster_welcome, poll, screenshot, screenshot_on_failure

# Every source of the sample config the stack starts with (KV, the sample REST API, the webhook feed).
SOURCE_IDS = tuple(definition.source_id for definition in load_sources_file(PROJECT_ROOT / "config" / "sources.json"))
TERMINAL = {"succeeded", "failed", "canceled", "dead_lettered"}
DAGSTER_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

ORDERS_TABLE = ("source_cloudflare", "orders_kv")
ORDERS_RAW = ("raw_staging", "cloudflare_kv", "orders")
ORDERS_SYSTEM = ("cloudflare_kv", "ORDERS_KV")
VENDORS_TABLE = ("source_cloudflare", "vendor_kv")
VENDORS_SOURCE_ID = "cloudflare_kv_vendors"


# --- admin page ------------------------------------------------------------------------------------------

def table_after(page: Page, heading: str):
    """The table right after an <h2> of the admin page (the page has no table captions)."""
    return page.get_by_role("heading", name=heading, exact=True).locator("xpath=following-sibling::table[1]")


def table_cells(table, header_row: bool = True) -> list[list[str]]:
    """Every row's cell texts (without the header row), read in one go (the page refreshes itself)."""
    rows = table.get_by_role("row").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
    return rows[1:] if header_row else rows


def runs_by_id(page: Page) -> dict[str, dict[str, str]]:
    columns = ("run", "source", "status", "trigger", "rows", "created", "started", "finished")
    return {cells[0]: dict(zip(columns, cells)) for cells in table_cells(table_after(page, "Recent runs"))}


def test_admin_page_signs_in_lists_sources_and_runs_a_source(live_stack, browser_context):
    stack = live_stack
    token = stack.tokens()["DLT_OPERATOR_TOKEN"]
    page = browser_context.new_page()
    with screenshot_on_failure(page, "admin"):
        response = page.goto(f"{stack.worker_url}/admin?token={token}")
        assert response is not None and response.status == 200, f"/admin answered {response and response.status}"

        # The token is exchanged for a cookie and dropped from the URL by a redirect.
        final = urlsplit(page.url)
        assert final.path == "/admin", page.url
        assert token not in page.url and "token=" not in page.url and "token" not in parse_qs(final.query), page.url
        redirect = response.request.redirected_from
        assert redirect is not None and "token=" in redirect.url, "expected a redirect away from /admin?token=..."
        assert redirect.response().status == 303
        assert page.evaluate("location.href") == page.url

        cookies = {cookie["name"]: cookie for cookie in browser_context.cookies(stack.worker_url)}
        assert "dlt_admin" in cookies, f"no session cookie, cookies: {sorted(cookies)}"
        session = cookies["dlt_admin"]
        assert session["httpOnly"] is True, session
        assert session["sameSite"] == "Strict", session
        assert session["secure"] is True, session
        assert token not in session["value"], "the session cookie carries the operator token itself"
        assert page.evaluate("document.cookie") == "", "the session cookie is readable from JavaScript"
        assert token not in page.content(), "the operator token is in the admin page HTML"

        # Sources: all listed; the disabled one cannot be run.
        sources = table_after(page, "Sources")
        listed = [cells[0].splitlines()[0] for cells in table_cells(sources)]
        assert sorted(listed) == sorted(SOURCE_IDS), f"sources listed: {listed}"
        for source_id in SOURCE_IDS:
            row = sources.get_by_role("row").filter(has_text=source_id)
            run_button = row.get_by_role("button", name="Run", exact=True)
            if source_id == VENDORS_SOURCE_ID:
                assert run_button.is_disabled(), "the disabled source's Run button is enabled"
            else:
                assert run_button.is_enabled(), f"{source_id}: Run button disabled"
        runs_before = set(runs_by_id(page))
        screenshot(page, "admin-01-signed-in-sources", full_page=True)

        # Start a run of the orders source from the page.
        orders_row = sources.get_by_role("row").filter(has_text="cloudflare_kv_orders")
        with page.expect_navigation():
            orders_row.get_by_role("button", name="Run", exact=True).click()
        assert urlsplit(page.url).path == "/admin", page.url

        def new_orders_run():
            fresh = {run_id: run for run_id, run in runs_by_id(page).items() if run_id not in runs_before
                     and run["source"] == "cloudflare_kv_orders" and run["trigger"] == "admin"}
            if not fresh:
                page.reload()
            return sorted(fresh.items())[-1] if fresh else None

        run_id, run = poll(new_orders_run, timeout=20, interval=1, what="the new admin run in 'Recent runs'")
        screenshot(page, "admin-02-run-started", full_page=True)

        def finished():
            page.reload()
            current = runs_by_id(page).get(run_id)
            return current if current and current["status"] in TERMINAL else None

        started = time.monotonic()
        try:
            run = poll(finished, timeout=180, interval=2, what=f"run {run_id} to finish on the admin page")
        finally:
            screenshot(page, "admin-03-run-finished", full_page=True)
        assert run["status"] == "succeeded", (
            f"run {run_id} ended {run['status']} after {time.monotonic() - started:.0f} s: {run}")
        assert int(run["rows"]) > 0, f"run {run_id} succeeded without rows: {run}"
        orders_cells = next(cells for cells in table_cells(sources) if cells[0].startswith("cloudflare_kv_orders"))
        assert "succeeded" in orders_cells[3], f"the source's last run column shows {orders_cells[3]!r}"

        # The run's own page shows it succeeded, with its Dagster run and events.
        page.get_by_role("link", name=run_id, exact=True).click()
        page.wait_for_url(re.compile(rf"/admin/runs/{run_id}$"))
        details = {cells[0]: cells[1] for cells in table_cells(page.locator("table").first, header_row=False)
                   if len(cells) == 2}
        assert details.get("status") == "succeeded", details
        assert details.get("trigger") == "admin", details
        assert re.fullmatch(r"[0-9a-f-]{36}", details.get("dagster run", "")), details
        assert "succeeded" in page.locator("table").nth(1).inner_text()
        assert token not in page.content(), "the operator token is in the run page HTML"
        screenshot(page, "admin-04-run-page-succeeded", full_page=True)


# --- Dagster UI ------------------------------------------------------------------------------------------

ASSET_NODES = "{ assetNodes { assetKey { path } dependencyKeys { path } isMaterializable } }"


def dagster_asset_nodes(stack) -> dict[tuple[str, ...], dict]:
    nodes = stack.dagster_graphql(ASSET_NODES)["data"]["assetNodes"]
    return {tuple(node["assetKey"]["path"]): node for node in nodes}


def node_rect(page: Page, label: str) -> dict:
    """Screen rectangle of the graph node whose title is `label` (Dagster shows a key's last path part)."""
    title = page.locator(f'foreignObject [data-tooltip="{label}"]')
    assert title.count() == 1, f"expected one graph node titled {label!r}, found {title.count()}"
    return title.evaluate("el => { const r = el.closest('foreignObject').getBoundingClientRect();"
                          " return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }")


def graph_edges(page: Page) -> list[dict]:
    """Start and end point (screen coordinates) of every arrow of the graph."""
    return page.locator("svg path[marker-end]").evaluate_all("""paths => paths.map(p => {
        const m = p.getScreenCTM(), total = p.getTotalLength();
        const at = (d) => { const q = p.getPointAtLength(d); return {x: q.x * m.a + q.y * m.c + m.e,
                                                                     y: q.x * m.b + q.y * m.d + m.f}; };
        return {start: at(0), end: at(total)};
    })""")


def has_edge(edges: list[dict], upstream: dict, downstream: dict, slack: float = 30) -> bool:
    """An arrow leaving `upstream` on its right side and arriving at `downstream` on its left (left-to-right
    layout)."""
    def near_side(point, rect, side):
        return abs(point["x"] - rect[side]) <= slack and rect["top"] - slack <= point["y"] <= rect["bottom"] + slack
    return any(near_side(edge["start"], upstream, "right") and near_side(edge["end"], downstream, "left")
               for edge in edges)


def test_dagster_ui_shows_lineage_source_system_raw_snapshot_table(live_stack, browser_context):
    stack = live_stack
    # Cross-check of the edges with Dagster's own GraphQL: ORDERS_KV -> raw snapshot -> orders_kv.
    nodes = dagster_asset_nodes(stack)
    for key in (ORDERS_SYSTEM, ORDERS_RAW, ORDERS_TABLE):
        assert key in nodes, f"asset {'/'.join(key)} missing; assets: {sorted('/'.join(k) for k in nodes)}"
    deps = {key: [tuple(dep["path"]) for dep in node["dependencyKeys"]] for key, node in nodes.items()}
    assert deps[ORDERS_TABLE] == [ORDERS_RAW], deps[ORDERS_TABLE]
    assert deps[ORDERS_RAW] == [ORDERS_SYSTEM], deps[ORDERS_RAW]
    assert deps[ORDERS_SYSTEM] == [], deps[ORDERS_SYSTEM]
    assert not nodes[ORDERS_SYSTEM]["isMaterializable"] and not nodes[ORDERS_RAW]["isMaterializable"]
    assert nodes[ORDERS_TABLE]["isMaterializable"]

    page = browser_context.new_page()
    dismiss_dagster_welcome(page)
    with screenshot_on_failure(page, "dagster-lineage"):
        # The global asset lineage page, every group expanded, filtered to orders_kv and all its upstream.
        page.goto(f"{stack.dagster_url}/dagster/asset-groups")
        page.get_by_text("Global asset lineage", exact=True).wait_for()
        for group in ("source_systems", "raw_staging", "source_cloudflare"):
            page.get_by_role("button", name=re.compile(rf"\b{group}\b")).first.wait_for()
        page.get_by_role("button", name="settings", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
        search = page.get_by_role("textbox", name="Search and filter assets")
        search.focus()
        page.keyboard.type('+key:"source_cloudflare/orders_kv"')
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"asset-groups~"))

        for label in ("ORDERS_KV", "orders", "orders_kv"):
            page.locator(f'foreignObject [data-tooltip="{label}"]').wait_for(state="visible")
        # Nothing outside the upstream of orders_kv (e.g. the leads or vendors nodes).
        for other in ("LEADS_KV", "leads", "leads_kv", "vendor_kv"):
            assert page.locator(f'foreignObject [data-tooltip="{other}"]').count() == 0, f"{other} shown"

        def laid_out():
            rects = {label: node_rect(page, label) for label in ("ORDERS_KV", "orders", "orders_kv")}
            edges = graph_edges(page)
            ok = (rects["ORDERS_KV"]["right"] < rects["orders"]["left"]
                  and rects["orders"]["right"] < rects["orders_kv"]["left"]
                  and has_edge(edges, rects["ORDERS_KV"], rects["orders"])
                  and has_edge(edges, rects["orders"], rects["orders_kv"]))
            return (rects, edges) if ok else None

        # The graph animates into place: wait until the nodes sit left to right joined by the two arrows.
        rects, edges = poll(laid_out, timeout=15, interval=0.5,
                            what="ORDERS_KV -> orders -> orders_kv laid out left to right with two arrows")
        assert not has_edge(edges, rects["orders_kv"], rects["orders"]), "an arrow runs backwards"
        assert not has_edge(edges, rects["ORDERS_KV"], rects["orders_kv"]), "the raw snapshot is bypassed"
        screenshot(page, "dagster-01-global-lineage-orders")

        # The asset's own lineage tab, upstream: the same chain.
        page.goto(f"{stack.dagster_url}/dagster/assets/source_cloudflare/orders_kv?view=lineage")
        page.get_by_role("button", name=re.compile(r"\bUpstream$")).click()
        page.get_by_role("button", name="All", exact=True).click()
        for label in ("ORDERS_KV", "orders", "orders_kv"):
            page.locator(f'foreignObject [data-tooltip="{label}"]').wait_for(state="visible")
        poll(laid_out, timeout=15, interval=0.5, what="the upstream lineage of orders_kv on its asset page")
        screenshot(page, "dagster-02-asset-upstream-lineage-orders_kv")


RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status assetSelection { path } } } }"


def dagster_run(stack, run_id: str) -> dict:
    return stack.dagster_graphql(RUN_STATUS, {"id": run_id})["data"]["runOrError"]


def test_dagster_ui_materialization_succeeds_and_reaches_the_ledger(live_stack, operator, browser_context):
    stack = live_stack
    page = browser_context.new_page()
    dismiss_dagster_welcome(page)
    with screenshot_on_failure(page, "dagster-materialize"):
        page.goto(f"{stack.dagster_url}/dagster/assets/{'/'.join(VENDORS_TABLE)}")
        page.get_by_role("tab", name="Overview").wait_for()
        materialize = page.get_by_role("button", name=re.compile(r"^(materialization )?Materialize$"))
        materialize.click()
        # An unpartitioned asset without required config launches straight away; should a launchpad or a
        # confirmation open instead (another Dagster), launch from there.
        toast_link = page.get_by_role("region", name=re.compile("Notifications")).get_by_role("link", name="View")
        launch_dialog = page.get_by_role("dialog").get_by_role("button", name=re.compile(r"^(Launch|Materialize)"))
        toast_link.or_(launch_dialog).first.wait_for(timeout=30_000)
        if not toast_link.count():
            launch_dialog.first.click()
        href = toast_link.first.get_attribute("href")
        match = re.search(r"/runs/([0-9a-f-]{36})", href or "")
        assert match, f"the launch toast links to {href!r}"
        run_id = match.group(1)
        page.wait_for_timeout(400)  # the toast slides in
        screenshot(page, "dagster-03-materialize-launched")

        run = dagster_run(stack, run_id)
        assert run["__typename"] == "Run", run
        assert [tuple(key["path"]) for key in run["assetSelection"]] == [VENDORS_TABLE], run

        page.goto(f"{stack.dagster_url}/dagster/runs/{run_id}")
        def finished():
            current = dagster_run(stack, run_id)["status"]
            return current if current in DAGSTER_TERMINAL else None

        status = poll(finished, timeout=150, interval=2, what=f"Dagster run {run_id} to finish")
        page.reload()
        page.get_by_text(f"Runs / {run_id[:8]}").or_(page.get_by_text(run_id[:8], exact=True)).first.wait_for()
        page.get_by_text("RUN_ENQUEUED").first.wait_for()
        if status == "SUCCESS":
            # The run page's header shows the outcome.
            page.get_by_text("Success", exact=True).first.wait_for(state="visible")
        page.wait_for_timeout(500)  # let the step timeline finish drawing
        screenshot(page, "dagster-04-run-page")
        assert status == "SUCCESS", f"Dagster run {run_id} ended {status}; see dagster-04-run-page.png"

    # The run-mirroring sensor registers the UI run in the Worker's ledger and reports its success.
    def ledger_run():
        for entry in operator.runs(source_id=VENDORS_SOURCE_ID, limit=50):
            if entry["dagster_run_id"] == run_id:
                return entry if entry["status"] in TERMINAL else None
        return None

    entry = poll(ledger_run, timeout=60, interval=2,
                 what=f"the Worker's ledger to hold the finished Dagster run {run_id} of {VENDORS_SOURCE_ID}")
    assert entry["trigger"] == "ui", entry
    assert entry["source_id"] == VENDORS_SOURCE_ID, entry
    assert entry["status"] == "succeeded", entry
    assert entry["rows_loaded"] and entry["rows_loaded"] > 0, entry
