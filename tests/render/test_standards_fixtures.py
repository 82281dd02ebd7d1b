"""The email standards (HTML-01…13, MJML-03, the text part) for every fixture in both modes.

test_email.py pins each rule on the sample in detail; this runs the same rules over every
bulletin we hold (the sample, and the Russian, Kazakh and sentence-case English ones), as
stored issues with a web version, in full and in excerpt mode, each with a pictured article.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from lxml import html as lxml_html

from newsletter.issues.modes import IssueMode
from newsletter.render.email import (
    SIZE_BUDGET_BYTES,
    RenderedEmail,
    compile_mjml,
    css_inliner,
    environment,
    inline_css,
    render_email,
    render_mjml,
)
from newsletter.render.personalise import PersonalTemplate
from newsletter.render.text import TEXT_WIDTH_CHARS
from newsletter.render.view import IssueView
from tests.render.samples import FIXTURES, SENDER, TEMPLATE_DIR, fixture_issue
from tests.render.test_email import (
    DARK_BLOCK,
    FILLED,
    RATES_TABLE,
    STYLE_BLOCK,
    UNSUPPORTED,
)
from tests.render.test_text import ENTITY, TAG
from tests.render.wcag import (
    AA_NORMAL_TEXT,
    HEX,
    contrast_ratio,
    is_hidden,
    resolved_background,
    style_of,
)

CASES = [(name, mode) for name in FIXTURES for mode in IssueMode]


def pictured(issue: IssueView) -> IssueView:
    first = replace(
        issue.articles[0], image_url="https://cdn.example.com/lead.jpg", image_alt="The lead"
    )
    return replace(issue, articles=(first, *issue.articles[1:]))


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{m}" for n, m in CASES])
def case(request: pytest.FixtureRequest) -> tuple[IssueView, RenderedEmail]:
    name, mode = request.param
    issue = pictured(fixture_issue(name, mode))
    return issue, render_email(issue, SENDER, TEMPLATE_DIR)


def dom(html: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(html)


def test_html_01_under_the_size_budget(case: tuple[IssueView, RenderedEmail]) -> None:
    _, email = case
    assert email.html_bytes == len(email.html.encode()) < SIZE_BUDGET_BYTES


def test_html_03_every_img_has_a_width_and_auto_height(
    case: tuple[IssueView, RenderedEmail],
) -> None:
    _, email = case
    (img,) = dom(email.html).xpath("//img")
    assert img.get("width", "").isdigit()
    assert style_of(img).get("height") == "auto"


def test_html_04_and_13_inlining_keeps_important_and_conditionals(
    case: tuple[IssueView, RenderedEmail],
) -> None:
    issue, _ = case
    before = compile_mjml(render_mjml(issue, SENDER, environment(TEMPLATE_DIR, issue.lang)))
    after = inline_css(before, css_inliner(TEMPLATE_DIR))
    assert dom(after).xpath("//meta[@name='viewport']")
    assert before.count("!important") == after.count("!important") > 0
    assert before.count("<!--[if") == after.count("<!--[if") > 10


def test_html_05_dark_mode_metas_and_palette(case: tuple[IssueView, RenderedEmail]) -> None:
    _, email = case
    doc = dom(email.html)
    for name in ("color-scheme", "supported-color-schemes"):
        assert doc.xpath(f"//head/meta[@name='{name}']/@content") == ["light dark"]
    block = DARK_BLOCK.search(email.html)
    assert block is not None
    texts = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", block[1]))
    backgrounds = set(re.findall(r"background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})", block[1]))
    for text in texts:
        for background in backgrounds:
            assert contrast_ratio(text, background) >= AA_NORMAL_TEXT, (text, background)


def test_html_06_preheader_first_hidden_with_filler(case: tuple[IssueView, RenderedEmail]) -> None:
    _, email = case
    first = dom(email.html).body[0]
    assert style_of(first)["display"] == "none"
    visible = first.text_content().replace("\u200c", "").replace("\xa0", "").strip()
    assert 40 <= len(visible) <= 130
    assert "\u200c\xa0" * 40 in first.text_content()


def test_html_07_images_have_alt(case: tuple[IssueView, RenderedEmail]) -> None:
    _, email = case
    assert [img.get("alt") for img in dom(email.html).xpath("//img")] == ["The lead"]


def test_html_08_tables(case: tuple[IssueView, RenderedEmail]) -> None:
    _, email = case
    doc = dom(email.html)
    for table in doc.xpath("//table"):
        if not table.xpath("./thead/tr/th | ./tbody/tr/th | ./tr/th"):
            assert table.get("role") == "presentation"
    (data,) = doc.xpath(RATES_TABLE)
    assert data.get("role") is None
    assert all(th.get("scope") in {"col", "row"} for th in doc.xpath("//th"))


def test_html_09_lang_dir_and_title(case: tuple[IssueView, RenderedEmail]) -> None:
    issue, email = case
    doc = dom(email.html)
    assert (doc.get("lang"), doc.get("dir")) == (issue.lang, "ltr")
    assert doc.findtext(".//title") == issue.subject


def test_html_10_headings_sizes_contrast_and_arrows(case: tuple[IssueView, RenderedEmail]) -> None:
    issue, email = case
    doc = dom(email.html)
    assert len(doc.xpath("//h1")) == 1
    assert [h2.text_content() for h2 in doc.xpath("//h2")] == [a.title for a in issue.articles]
    checked = 0
    for element in doc.iter():
        colour = style_of(element).get("color") if isinstance(element.tag, str) else None
        if colour is None or is_hidden(element):
            continue
        assert HEX.search(colour)
        ratio = contrast_ratio(colour, resolved_background(element))
        assert ratio >= AA_NORMAL_TEXT, (element.tag, element.get("class"), colour)
        checked += 1
    assert checked > 20
    for element in doc.xpath("//p|//td|//th|//span|//a|//div|//li"):
        size = style_of(element).get("font-size", "")
        if (element.text or "").strip() and size.endswith("px") and not is_hidden(element):
            assert float(size[:-2]) >= 14, (element.tag, element.get("class"), size)
    for paragraph in doc.xpath("//p[contains(@class, 'nl-p')]|//li"):
        assert float(style_of(paragraph)["line-height"]) >= 1.4
    changes = [r.xpath("./td")[-1].text_content() for r in doc.xpath(RATES_TABLE + "//tbody/tr")]
    assert changes
    assert all(change[0] in "▲▼▬" for change in changes)


def test_html_11_https_links_and_labelled_repeats(case: tuple[IssueView, RenderedEmail]) -> None:
    _, email = case
    filled = PersonalTemplate.split(email.html, "html").fill(FILLED)
    seen: dict[str, set[str]] = {}
    for link in dom(filled).xpath("//a"):
        assert link.get("href", "").startswith("https://")
        label = " ".join((link.get("aria-label") or link.text_content()).split())
        seen.setdefault(label, set()).add(link.get("href"))
    assert not {text: hrefs for text, hrefs in seen.items() if len(hrefs) > 1}


def test_html_12_nothing_major_clients_drop(case: tuple[IssueView, RenderedEmail]) -> None:
    _, email = case
    for name, pattern in UNSUPPORTED.items():
        assert not pattern.search(email.html), name


def test_mjml_03_colours_survive_without_style_blocks(
    case: tuple[IssueView, RenderedEmail],
) -> None:
    _, email = case
    doc = dom(STYLE_BLOCK.sub("", email.html))
    cells = doc.xpath(RATES_TABLE + "//tbody/tr/td[last()]")
    expected = {"▲": "#0f7b3e", "▼": "#c81e1e", "▬": "#52606d"}
    for cell in cells:
        assert style_of(cell).get("color") == expected[cell.text_content()[0]]
    assert style_of(doc.xpath("//p[contains(@class, 'nl-p')]")[0])["font-size"] == "16px"


def test_the_text_part_is_plain_wrapped_and_complete(case: tuple[IssueView, RenderedEmail]) -> None:
    issue, email = case
    assert not TAG.search(email.text)
    assert not ENTITY.search(email.text)
    assert max(len(line) for line in email.text.splitlines()) <= TEXT_WIDTH_CHARS
    flat = " ".join(email.text.split())
    for article in issue.articles:
        assert " ".join(article.title.split()) in flat
        assert " ".join(article.paragraphs[0].split()) in flat
    for field in ("view_url", "email", "unsubscribe_url"):
        assert f"\n%%NL.{field}%%\n" in email.text
    assert " ".join(SENDER.postal_address.split()) in flat
