"""Browser fixtures for the end-to-end tests: Debian's chromium driven by Playwright (never `playwright install`).

The fixtures (`browser`, `browser_context`, `live_stack`) are registered once in the e2e conftest, so the
session's one browser is shared by every module; test modules import only the helpers; screenshots go to `dlt_platform_tests/artifacts/` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from dlt_platform_tests.waiting import poll  # noqa: F401  (re-exported for the browser tests)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
VIEWPORT = {"width": 1920, "height": 1080}
# Dagster's first-visit "Join the Dagster community" dialog is remembered under this localStorage key.
DAGSTER_NUX_KEY = "communityNux"


def wait_for_chromium(timeout: float = 300.0) -> Path:
    """Debian's chromium may still be being installed by apt when the session starts: wait (bounded)."""
    deadline = time.monotonic() + timeout
    while not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{CHROMIUM} did not appear within {timeout:.0f} s (apt-get install chromium); "
                                 "these tests use Debian's chromium, never `playwright install`")
        time.sleep(2)
    return CHROMIUM


def artifact_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"


def screenshot(page: Page, name: str, full_page: bool = False) -> Path:
    path = artifact_path(name)
    page.screenshot(path=str(path), full_page=full_page)
    return path


@contextlib.contextmanager
def screenshot_on_failure(page: Page, name: str) -> Iterator[None]:
    """Keep what the browser showed when an assertion or a wait failed (`<name>-failure.png`)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            screenshot(page, f"{name}-failure", full_page=True)
        raise


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = wait_for_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test (no cookies or storage carried over), Dagster's welcome dialog pre-dismissed."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    context.add_init_script(f"try {{ window.localStorage.setItem('{DAGSTER_NUX_KEY}', '1') }} catch (e) {{}}")
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def live_stack(stack):
    """The session's stack with both halves answering: another e2e module may have stopped a part of it (e.g.
    Dagster, to test dead-lettering); `start_worker`/`start_dagster` are no-ops for a part that is up."""
    stack.start_worker()
    stack.start_dagster()
    return stack


def dismiss_dagster_welcome(page: Page) -> None:
    """Should the welcome dialog show anyway (another storage key in a later Dagster), click it away whenever it
    gets in the way."""
    page.add_locator_handler(page.get_by_text("Join the Dagster community"),
                             lambda _dialog: page.get_by_role("button", name="Skip").click())
