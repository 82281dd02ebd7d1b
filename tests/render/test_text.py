"""The text/plain part: readable, wrapped at 78, complete."""

from __future__ import annotations

import re
import textwrap
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from newsletter.render.email import RenderedEmail
from newsletter.render.text import TEXT_WIDTH_CHARS, heading, rate_table, wrap_text
from newsletter.render.view import IssueView, RateView
from tests.render.samples import SENDER

TAG = re.compile(r"<[A-Za-z/!][^>]*>")
ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_text_has_no_tags_or_entities(rendered: RenderedEmail, rendered_big: RenderedEmail) -> None:
    for email in (rendered, rendered_big):
        assert not TAG.search(email.text)
        assert not ENTITY.search(email.text)


def test_no_text_line_is_longer_than_78(
    rendered: RenderedEmail, rendered_big: RenderedEmail
) -> None:
    for email in (rendered, rendered_big):
        assert max(len(line) for line in email.text.splitlines()) <= TEXT_WIDTH_CHARS


def test_text_has_every_title_and_paragraph_in_order(
    rendered_big: RenderedEmail, big: IssueView
) -> None:
    text = flat(rendered_big.text)
    position = 0
    for article in big.articles:
        for part in (article.title, *article.paragraphs):
            found = text.find(flat(part), position)
            assert found >= position, part[:60]
            position = found
        assert article.url is not None
        assert f"\n{article.url}\n" in rendered_big.text


def test_text_has_the_rate_table_markers_and_address(rendered: RenderedEmail) -> None:
    text = rendered.text
    assert "Turkmen manat  TMT/USD  0.28490  ▬ 0%" in text
    assert "Tajik somoni   TJS/USD  0.10866  ▲ +0.55%" in text
    assert "\n%%NL.unsubscribe_url%%\n" in text
    assert "\n%%NL.view_url%%\n" in text
    assert flat(SENDER.postal_address) in flat(text)


def test_rate_table_aligns_columns_and_shows_every_direction() -> None:
    rates = [
        RateView("KGS/USD", "KGS", "Kyrgyz som", "USD", Decimal("0.01144"), Decimal("0")),
        RateView("UZS/USD", "UZS", "Uzbek som", "USD", Decimal("0.00008"), Decimal("-2.5")),
        RateView("XAU/USD", "XAU", None, "USD", Decimal("2650.1"), Decimal("1")),
    ]
    assert rate_table(rates).splitlines() == [
        "Currency    Pair        Rate  Change",
        "Kyrgyz som  KGS/USD  0.01144  ▬ 0%",
        "Uzbek som   UZS/USD  0.00008  ▼ −2.5%",
        "XAU         XAU/USD   2650.1  ▲ +1%",
    ]


def test_wrap_keeps_hyphenated_names_and_long_urls_whole() -> None:
    url = "https://example.com/" + "a" * 90
    wrapped = wrap_text(f"President Kassym-Jomart Tokayev {'word ' * 20}{url}")
    assert "Kassym-Jomart" in wrapped
    assert url in wrapped.splitlines()


def test_heading_is_underlined_to_its_longest_line() -> None:
    assert heading("Exchange rates", "-") == "Exchange rates\n--------------"


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=90))
def test_the_short_line_shortcut_wraps_exactly_as_textwrap(text: str) -> None:
    expected = (
        "\n".join(
            textwrap.wrap(
                text, width=TEXT_WIDTH_CHARS, break_long_words=False, break_on_hyphens=False
            )
        )
        or text
    )
    assert wrap_text(text) == expected
