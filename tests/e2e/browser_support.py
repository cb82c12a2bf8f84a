"""What the browser tests share besides fixtures (a conftest cannot be imported by name)."""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page


class CheckedPage:
    """A tab plus what went wrong in it: console errors, uncaught exceptions, failed requests."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.method} {request.url}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")
