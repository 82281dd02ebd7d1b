"""The rendered HTML against the email standards (HTML-01…13, MJML-03/04) and personalisation."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import html as lxml_html

from newsletter.errors import RenderError
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
from newsletter.render.personalise import FIELDS, PersonalTemplate
from newsletter.render.view import IssueView, RateView
from tests.render.samples import SENDER, TEMPLATE_DIR
from tests.render.wcag import (
    AA_NORMAL_TEXT,
    HEX,
    contrast_ratio,
    is_hidden,
    resolved_background,
    style_of,
)

STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style>", re.DOTALL | re.IGNORECASE)
DARK_BLOCK = re.compile(r"@media\s*\(prefers-color-scheme:\s*dark\)\s*\{(.*?)\}\s*\}", re.DOTALL)
# HTML-12: CSS and markup that major clients drop or mangle.
UNSUPPORTED = {
    "flex/grid": re.compile(r"display\s*:\s*(?:inline-)?(?:flex|grid)", re.I),
    "var()": re.compile(r"var\(\s*--", re.I),
    "position": re.compile(r"(?<![-\w])position\s*:", re.I),
    "negative margin": re.compile(r"margin[-a-z]*\s*:[^;\"}]*?(?<![\w.])-\d", re.I),
    "background-image": re.compile(r"background-image\s*:|background\s*:[^;\"}]*url\(", re.I),
    "@import": re.compile(r"@import", re.I),
    "@font-face": re.compile(r"@font-face", re.I),
    "<link>": re.compile(r"<link\b", re.I),
    "<script>": re.compile(r"<script\b", re.I),
    "<form>": re.compile(r"<form\b", re.I),
    "<svg>": re.compile(r"<svg\b", re.I),
    "<video>": re.compile(r"<video\b", re.I),
}
# The data table is the one whose own header row has column headers (layout tables contain it).
RATES_TABLE = "//table[./thead/tr/th[@scope='col']]"
FILLED = {
    "name": "Aida",
    "email": "aida@example.org",
    "unsubscribe_url": "https://example.com/u/abc?k=1&t=2",
    "view_url": "https://example.com/v/2025-12-11",
}


def dom(html: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(html)


def rates_table(doc: lxml_html.HtmlElement) -> lxml_html.HtmlElement:
    (table,) = doc.xpath(RATES_TABLE)
    return table


def stages(issue: IssueView) -> tuple[str, str]:
    """(HTML before inlining, HTML after) for one issue."""
    before = compile_mjml(render_mjml(issue, SENDER, environment(TEMPLATE_DIR)))
    return before, inline_css(before, css_inliner(TEMPLATE_DIR))


def test_sample_renders_every_article_in_the_given_order(
    rendered: RenderedEmail, sample: IssueView
) -> None:
    doc = dom(rendered.html)
    titles = [h2.text_content() for h2 in doc.xpath("//h2")]
    assert titles == [a.title for a in sample.articles]
    body_text = " ".join(doc.text_content().split())
    for article in sample.articles:
        for paragraph in article.paragraphs:
            assert " ".join(paragraph.split()) in body_text


def test_every_rate_row_shows_name_exact_rate_and_signed_change(
    rendered: RenderedEmail, sample: IssueView
) -> None:
    rows = rates_table(dom(rendered.html)).xpath(".//tbody/tr")
    assert len(rows) == len(sample.rates) == 5
    cells = {row.xpath("./th")[0].text_content(): row for row in rows}
    assert "KGS/USDKyrgyz som" in cells
    tmt = cells["TMT/USDTurkmen manat"]
    assert tmt.xpath("./td")[0].text_content() == "0.28490"  # the trailing zero is kept
    assert cells["TJS/USDTajik somoni"].xpath("./td")[1].text_content() == "▲ +0.55%"
    assert cells["KZT/USDKazakh tenge"].xpath("./td")[1].text_content() == "▬ 0%"  # "-0%" given


def test_html_01_size_is_under_the_gmail_budget(
    rendered: RenderedEmail, rendered_big: RenderedEmail, big: IssueView
) -> None:
    assert len(big.articles) == 12
    for email in (rendered, rendered_big):
        assert email.html_bytes == len(email.html.encode("utf-8"))
        assert email.html_bytes < SIZE_BUDGET_BYTES


def test_html_03_outer_width_is_600_and_every_img_has_a_width(
    rendered_big: RenderedEmail,
) -> None:
    html = rendered_big.html
    assert re.search(r'<table[^>]*\bwidth="600"', html)  # the Outlook ghost table
    assert "max-width:600px" in html.replace(" ", "")
    images = dom(html).xpath("//img")
    assert len(images) == 12
    for img in images:
        assert img.get("width", "").isdigit()
        assert style_of(img).get("height") == "auto"


def test_html_04_viewport_meta_and_important_survives_inlining(sample: IssueView) -> None:
    before, after = stages(sample)
    assert dom(after).xpath("//meta[@name='viewport']")
    assert before.count("!important") == after.count("!important") > 0
    assert "@media only screen and (max-width: 479px)" in after


def test_html_05_dark_mode_metas_and_overrides_are_present(rendered: RenderedEmail) -> None:
    doc = dom(rendered.html)
    for name in ("color-scheme", "supported-color-schemes"):
        assert doc.xpath(f"//head/meta[@name='{name}']/@content") == ["light dark"]
    block = DARK_BLOCK.search(rendered.html)
    assert block is not None
    assert "!important" in block[1]


def test_html_05_dark_palette_text_contrasts_with_every_dark_background(
    rendered: RenderedEmail,
) -> None:
    block = DARK_BLOCK.search(rendered.html)
    assert block is not None
    texts = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", block[1]))
    backgrounds = set(re.findall(r"background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})", block[1]))
    assert texts
    assert backgrounds
    for text in texts:
        for background in backgrounds:
            assert contrast_ratio(text, background) >= AA_NORMAL_TEXT, (text, background)


def test_html_06_preheader_is_the_first_hidden_element_with_filler(
    rendered: RenderedEmail,
) -> None:
    first = dom(rendered.html).body[0]
    assert first.tag == "div"
    assert style_of(first)["display"] == "none"
    text = first.text_content()
    visible = text.replace("\u200c", "").replace("\xa0", "").strip()
    assert 40 <= len(visible) <= 130
    assert "\u200c\xa0" * 40 in text


def test_html_06_a_missing_preheader_is_taken_from_the_first_paragraph(
    sample: IssueView,
) -> None:
    email = render_email(replace(sample, preheader=""), SENDER, TEMPLATE_DIR)
    preview = dom(email.html).body[0].text_content().replace("\u200c", "").replace("\xa0", "")
    assert preview.strip().startswith("The Western media’s binary response")
    assert 40 <= len(preview.strip()) <= 130


def test_html_07_every_img_has_alt_and_decorative_ones_are_empty(
    rendered_big: RenderedEmail,
) -> None:
    alts = [img.get("alt") for img in dom(rendered_big.html).xpath("//img")]
    assert None not in alts
    assert alts[0] == ""
    assert all(alts[1:])


def test_html_08_layout_tables_are_presentation_and_data_headers_have_scope(
    rendered: RenderedEmail,
) -> None:
    doc = dom(rendered.html)
    for table in doc.xpath("//table"):
        # Layout tables never have header cells of their own (they may contain the data table).
        if not table.xpath("./thead/tr/th | ./tbody/tr/th | ./tr/th"):
            assert table.get("role") == "presentation"
    data = rates_table(doc)
    assert data.get("role") is None
    assert all(th.get("scope") in {"col", "row"} for th in doc.xpath("//th"))
    assert len(data.xpath(".//thead//th[@scope='col']")) == 3


def test_html_09_lang_dir_and_title_are_set(rendered: RenderedEmail) -> None:
    doc = dom(rendered.html)
    assert doc.get("lang") == "en"
    assert doc.get("dir") == "ltr"
    assert doc.findtext(".//title") == "Central Asia Weekly – 11 December 2025"


def test_html_10_one_h1_with_name_and_date(rendered: RenderedEmail) -> None:
    (h1,) = dom(rendered.html).xpath("//h1")
    assert " ".join(h1.itertext()) == "Central Asia Weekly 11 December 2025"


def test_html_10_every_inline_colour_meets_aa_contrast_on_its_background(
    rendered_big: RenderedEmail,
) -> None:
    checked = 0
    for element in dom(rendered_big.html).iter():
        colour = style_of(element).get("color") if isinstance(element.tag, str) else None
        if colour is None or is_hidden(element):
            continue
        assert HEX.search(colour), f"non-hex colour {colour!r} cannot be checked"
        background = resolved_background(element)
        ratio = contrast_ratio(colour, background)
        assert ratio >= AA_NORMAL_TEXT, (element.tag, element.get("class"), colour, background)
        checked += 1
    assert checked > 50


def test_html_10_body_text_is_at_least_14px_with_line_height_1_4(
    rendered_big: RenderedEmail,
) -> None:
    for element in dom(rendered_big.html).xpath("//p|//td|//th|//span|//a|//div"):
        own_text = (element.text or "").strip()
        size = style_of(element).get("font-size", "")
        if not own_text or not size.endswith("px") or is_hidden(element):
            continue
        assert float(size[:-2]) >= 14, (element.tag, element.get("class"), size)
    for paragraph in dom(rendered_big.html).xpath("//p[contains(@class, 'nl-p')]"):
        assert float(style_of(paragraph)["line-height"]) >= 1.4


def test_html_10_every_change_cell_has_an_arrow(rendered_big: RenderedEmail) -> None:
    rows = rates_table(dom(rendered_big.html)).xpath(".//tbody/tr")
    changes = [row.xpath("./td")[-1].text_content() for row in rows]
    assert changes
    assert all(change[0] in "▲▼▬" for change in changes)
    assert "▼ −1.20%" in changes  # down keeps its sign as well as its colour


def test_html_11_links_are_https_after_filling_and_repeats_have_labels(
    rendered_big: RenderedEmail,
) -> None:
    filled = PersonalTemplate.split(rendered_big.html, "html").fill(FILLED)
    links = dom(filled).xpath("//a")
    assert links
    seen: dict[str, set[str]] = {}
    for link in links:
        assert link.get("href", "").startswith("https://")
        label = link.get("aria-label") or link.text_content()
        seen.setdefault(" ".join(label.split()), set()).add(link.get("href"))
    repeated = {text: hrefs for text, hrefs in seen.items() if len(hrefs) > 1}
    assert not repeated


def test_html_12_no_css_or_markup_that_major_clients_drop(
    rendered_big: RenderedEmail,
) -> None:
    for name, pattern in UNSUPPORTED.items():
        assert not pattern.search(rendered_big.html), name


def test_html_13_outlook_conditionals_survive_inlining(big: IssueView) -> None:
    before, after = stages(big)
    assert before.count("<!--[if") == after.count("<!--[if") > 10
    assert before.count("<![endif]-->") == after.count("<![endif]-->")


def test_mjml_03_direction_colours_survive_without_style_blocks(
    rendered_big: RenderedEmail,
) -> None:
    doc = dom(STYLE_BLOCK.sub("", rendered_big.html))
    colours = {
        cell.text_content()[0]: style_of(cell).get("color")
        for cell in rates_table(doc).xpath(".//tbody/tr/td[last()]")
    }
    assert colours == {"▲": "#0f7b3e", "▼": "#c81e1e", "▬": "#52606d"}
    assert style_of(doc.xpath("//p[contains(@class, 'nl-p')]")[0])["font-size"] == "16px"


@pytest.mark.parametrize("count", [0, 1, 7, 40])
def test_mjml_04_n_rate_rows_render_n_rows_after_the_whole_pipeline(
    sample: IssueView, count: int
) -> None:
    rates = tuple(
        RateView(
            pair="KGS/USD",
            base_code="KGS",
            base_name=None,
            quote_code="USD",
            rate=Decimal(f"0.{n:05d}"),
            change_pct=Decimal(n % 3 - 1),
        )
        for n in range(count)
    )
    email = render_email(replace(sample, rates=rates), SENDER, TEMPLATE_DIR)
    doc = dom(email.html)
    tables = doc.xpath(RATES_TABLE)
    if count == 0:
        assert tables == []  # no empty table: the whole rates section is left out
        return
    rows = tables[0].xpath("./tbody/tr")
    assert [row.xpath("./td")[0].text_content() for row in rows] == [
        f"0.{n:05d}" for n in range(count)
    ]


def test_unknown_currency_shows_its_code_only(sample: IssueView) -> None:
    rate = RateView(
        pair="XAU/USD",
        base_code="XAU",
        base_name=None,
        quote_code="USD",
        rate=Decimal("2650.10"),
        change_pct=Decimal("0.4"),
    )
    email = render_email(replace(sample, rates=(rate,)), SENDER, TEMPLATE_DIR)
    (row_header,) = rates_table(dom(email.html)).xpath(".//tbody/tr/th")
    assert row_header.text_content() == "XAU/USD"


def test_rendered_bodies_split_into_known_personal_fields_only(
    rendered: RenderedEmail,
) -> None:
    html_template = PersonalTemplate.split(rendered.html, "html")
    text_template = PersonalTemplate.split(rendered.text, "text")
    for template in (html_template, text_template):
        assert set(template.fields) <= set(FIELDS)
        assert {"unsubscribe_url", "view_url", "email"} <= set(template.fields)
    filled = html_template.fill(FILLED)
    assert 'href="https://example.com/u/abc?k=1&amp;t=2"' in filled
    assert "%%NL." not in filled


def test_the_body_never_uses_the_name_so_an_empty_name_reads_well(
    rendered: RenderedEmail,
) -> None:
    # Decision: the name goes in the To header only; no "Dear ," when a subscriber has none.
    assert "name" not in PersonalTemplate.split(rendered.html, "html").fields
    assert "name" not in PersonalTemplate.split(rendered.text, "text").fields


def test_footer_has_address_reason_unsubscribe_and_view_links(rendered: RenderedEmail) -> None:
    doc = dom(rendered.html)
    text = " ".join(doc.text_content().split())
    assert SENDER.postal_address in text
    assert "You receive Central Asia Weekly because %%NL.email%% subscribed at" in text
    hrefs = doc.xpath("//a/@href")
    assert "%%NL.unsubscribe_url%%" in hrefs
    assert hrefs.count("%%NL.view_url%%") == 2  # top of the email and footer


def test_environment_is_cached_per_template_dir(template_copy: Path) -> None:
    assert environment(TEMPLATE_DIR) is environment(TEMPLATE_DIR / ".")
    assert environment(template_copy) is not environment(TEMPLATE_DIR)


def test_a_missing_inline_css_is_a_render_error(template_copy: Path, sample: IssueView) -> None:
    (template_copy / "inline.css").unlink()
    with pytest.raises(RenderError, match=r"inline\.css"):
        render_email(sample, SENDER, template_copy)


def test_a_missing_postal_address_leaves_no_dangling_comma(sample: IssueView) -> None:
    # The pre-send check refuses to send it; rendering still works so the check can say why.
    email = render_email(sample, replace(SENDER, postal_address=""), TEMPLATE_DIR)
    assert "Central Asia Weekly, <" not in email.html
    assert not email.text.rstrip().endswith(",")
