"""The local stack as `dlt-platform up` starts it (wrangler dev + Dagster), once for the e2e session."""

from __future__ import annotations

import pytest

from dlt_platform.local.loopback import free_port
from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform_tests.e2e.alert_fixtures import alert_receiver  # noqa: F401  (fixture)

# One session-wide browser for every module (a second sync Playwright in the same session fails).
from dlt_platform_tests.e2e.browser_fixtures import browser, browser_context, live_stack  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, alert_receiver):  # noqa: F811  (fixture)
    root = tmp_path_factory.mktemp("stack")
    local = LocalStack(paths=StackPaths(state_dir=root / "state", data_dir=root / "data"),
                       worker_port=free_port(), dagster_port=free_port(), sample_api_port=free_port(),
                       # Lets the test trigger a re-send of a still-queued run through the cron handler.
                       extra_worker_vars={"QUEUED_RESEND_MINUTES": "0.001",
                                          "ALERT_WEBHOOK_URL": alert_receiver.url})
    try:
        local.start(say=lambda _text: None)
        yield local
    finally:
        local.stop_all()


@pytest.fixture(scope="session")
def operator(stack):
    with stack.operator() as client:
        yield client
