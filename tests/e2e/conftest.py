"""End-to-end fixtures: Debian's Chromium, headless, driven by Playwright.

Playwright never downloads a browser here: it launches the system's Chromium through
``executable_path`` (the ``CHROMIUM`` environment variable, else ``chromium`` on PATH). The
setup installs it (scripts/bootstrap.sh with WITH_BROWSER=1 or CI=true, as root, with apt).

- ``chromium_executable`` (session): the path; without one the browser tests are skipped, except
  under CI, where the setup must have installed it and its absence is a failure.
- ``browser`` (module): a browser context with a fresh ``--user-data-dir`` and the flags this
  machine's closed network needs (no background requests to Google's hosts, no QUIC).
- ``tab`` (function): a new page (``tab.page``) whose console errors, uncaught exceptions and
  failed requests are collected in ``tab.problems`` so that tests can require none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

from tests.e2e.browser_support import CheckedPage

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    configured = os.environ.get("CHROMIUM", "").strip()
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    found = find_chromium()
    if found is None:
        reason = (
            "Debian's chromium is not installed: run `WITH_BROWSER=1 scripts/bootstrap.sh` as root "
            "(it installs it with apt), or set CHROMIUM to a Chromium binary"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} (CI's setup should have installed it)")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope: its event loop must not outlive the browser tests into other modules' tests.
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, chromium_executable: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
        executable_path=chromium_executable,
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1280, "height": 1000},
    )
    context.set_default_timeout(30_000)
    yield context
    context.close()


@pytest.fixture
def tab(browser: BrowserContext) -> Iterator[CheckedPage]:
    tab = browser.new_page()
    yield CheckedPage(tab)
    tab.close()
