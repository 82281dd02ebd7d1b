"""Headless Chromium for the tests that look at pages and emails, and where their pictures go.

Debian's chromium at /usr/bin/chromium, driven by Playwright (``executable_path``: Playwright's
own browser download does not work here). Skipped only on a developer machine without it; with
CI set a missing browser fails the run. Screenshots kept as test artefacts go under
``test-artifacts/`` (ignored by git; ``NL_ARTIFACT_DIR`` puts them elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import REPO, unavailable

CHROMIUM = Path("/usr/bin/chromium")
# No background networking: this machine's closed network refuses Chromium's own connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("NL_ARTIFACT_DIR") or REPO / "test-artifacts")


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium, closed when the block ends.

    Use it from a module-scoped fixture, not a session-scoped one: the sync Playwright API runs
    an event loop in this thread, so two modules' browsers must not be open at once.
    """
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is not installed (Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
