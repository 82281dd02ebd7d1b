"""HTML-04 in a real engine: the email reflows at 375 px and fits 600 px without horizontal scroll.

Needs Debian's chromium (see ``tests/browser.py``). Set NL_SCREENSHOT_DIR=docs/screenshots to
refresh the screenshots kept in the docs. The tests of both modes save theirs under
``test-artifacts/email/`` (ignored by git; NL_ARTIFACT_DIR moves the root).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.issues.modes import IssueMode
from newsletter.render.email import RenderedEmail, render_email
from newsletter.render.locale import translations
from newsletter.render.personalise import PersonalTemplate
from tests.browser import ARTIFACTS, chromium
from tests.render.samples import FIXTURES, SENDER, TEMPLATE_DIR, fixture_issue

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
    with chromium() as launched:
        yield launched


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


# --- Both modes, every fixture, in the issue's language ---------------------------------------

# Screenshots of these tests are kept as artefacts (not in git: /test-artifacts/ is ignored).
SCREENSHOTS = ARTIFACTS / "email"
PHONE_AND_DESKTOP = [375, 600]


def rendered_case(name: str, mode: IssueMode) -> RenderedEmail:
    return render_email(fixture_issue(name, mode), SENDER, TEMPLATE_DIR)


def page_height(page: Any) -> int:
    height: int = page.evaluate("document.documentElement.scrollHeight")
    return height


def save(page: Any, name: str) -> Path:
    target = SCREENSHOTS / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target


@pytest.mark.parametrize("width", PHONE_AND_DESKTOP)
@pytest.mark.parametrize("mode", list(IssueMode))
@pytest.mark.parametrize("name", list(FIXTURES))
def test_every_fixture_fits_and_shows_masthead_and_contents(
    browser: Any, name: str, mode: IssueMode, width: int
) -> None:
    issue = fixture_issue(name, mode)
    page = open_email(browser, rendered_case(name, mode).html, width)
    try:
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width == width  # HTML-04: no horizontal scroll
        masthead = page.locator("h1")
        assert masthead.is_visible()
        assert issue.date_text in masthead.inner_text()
        assert page.locator(".nl-kicker").inner_text().strip()  # the issue number
        contents = page.locator("ul.nl-toc li")
        assert contents.count() == len(issue.articles)
        assert contents.first.is_visible()
        assert page.locator(".nl-toc-title").is_visible()
        assert save(page, f"{name}-{mode}-{width}").stat().st_size > 0
    finally:
        page.close()


@pytest.mark.parametrize("width", PHONE_AND_DESKTOP)
def test_excerpt_mode_is_under_half_the_height_of_full_mode(browser: Any, width: int) -> None:
    heights = {}
    for mode in IssueMode:
        page = open_email(browser, rendered_case("sample", mode).html, width)
        try:
            heights[mode] = page_height(page)
        finally:
            page.close()
    assert heights[IssueMode.EXCERPT] < heights[IssueMode.FULL] / 2, heights


def test_the_russian_footer_and_legend_come_from_the_catalogue(browser: Any) -> None:
    catalogue = translations("ru")
    page = open_email(browser, rendered_case("ru", IssueMode.FULL).html, 375)
    try:
        footer = page.locator("p.nl-muted").all_inner_texts()
        text = " ".join(" ".join(footer).split())
        for message in (
            "▲ up, ▼ down, ▬ unchanged over the week.",
            "View in browser",
        ):
            assert catalogue.gettext(message) in text
        unsubscribe = catalogue.gettext("Unsubscribe from %(publication)s") % {
            "publication": SENDER.publication
        }
        assert unsubscribe in text
        assert "Unsubscribe" not in text
        height = page_height(page)
        target = SCREENSHOTS / "ru-full-375-footer.png"
        page.screenshot(
            path=str(target),
            full_page=True,
            clip={"x": 0, "y": height - 500, "width": 375, "height": 500},
        )
    finally:
        page.close()
