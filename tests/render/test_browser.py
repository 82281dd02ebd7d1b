"""HTML-04 in a real engine: the email reflows at 375 px and fits 600 px without horizontal scroll.

Needs Debian's chromium at /usr/bin/chromium. Skipped only on a developer machine without it; with
CI set the test fails instead, so a broken CI image cannot silently pass. Set
NL_SCREENSHOT_DIR=docs/screenshots to refresh the screenshots kept in the docs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.render.email import RenderedEmail
from newsletter.render.personalise import PersonalTemplate
from tests.conftest import unavailable

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREEN_HEIGHT_PX = 800
VALUES = {
    "name": "Aida",
    "email": "aida@example.org",
    "unsubscribe_url": "https://example.com/unsubscribe/abc",
    "view_url": "https://example.com/issues/2025-12-11",
}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is not installed (Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_email(browser: Any, html: str, width: int, scheme: str = "light") -> Any:
    page = browser.new_page(
        viewport={"width": width, "height": SCREEN_HEIGHT_PX}, color_scheme=scheme
    )
    page.route("**/*", lambda route: route.abort())  # nothing may load from the network
    page.set_content(PersonalTemplate.split(html, "html").fill(VALUES))
    return page


@pytest.mark.parametrize("width", [375, 600])
def test_no_horizontal_scroll(
    browser: Any, rendered_big: RenderedEmail, width: int, tmp_path: Path
) -> None:
    page = open_email(browser, rendered_big.html, width)
    try:
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert inner_width == width
        assert scroll_width <= inner_width
    finally:
        page.close()


@pytest.mark.parametrize("width", [375, 600])
def test_screenshots_read_well(
    browser: Any, rendered: RenderedEmail, width: int, tmp_path: Path
) -> None:
    target = Path(os.environ.get("NL_SCREENSHOT_DIR") or tmp_path)
    for scheme in ("light", "dark"):
        page = open_email(browser, rendered.html, width, scheme)
        try:
            page.screenshot(path=str(target / f"render-{width}-{scheme}.png"))
            if scheme == "light":
                height = page.evaluate("document.documentElement.scrollHeight")
                page.screenshot(
                    path=str(target / f"render-{width}-footer.png"),
                    full_page=True,
                    clip={"x": 0, "y": height - 400, "width": width, "height": 400},
                )
        finally:
            page.close()
    assert (target / f"render-{width}-light.png").stat().st_size > 0


def test_mobile_overrides_apply_at_375(browser: Any, rendered: RenderedEmail) -> None:
    page = open_email(browser, rendered.html, 375)
    try:
        size = page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize")
        assert size == "24px"  # the max-width:479px media query kept its !important
    finally:
        page.close()


def test_dark_mode_overrides_apply(browser: Any, rendered: RenderedEmail) -> None:
    page = open_email(browser, rendered.html, 600, "dark")
    try:
        colour = page.evaluate("getComputedStyle(document.querySelector('.nl-p')).color")
        assert colour == "rgb(229, 231, 235)"
    finally:
        page.close()
