"""The view values: signs and arrows, exact rates, the inbox preview, and URL checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from newsletter.content.bulletin import Rate
from newsletter.errors import InvalidInput
from newsletter.render.currencies import CURRENCY_NAMES, currency_name
from newsletter.render.view import (
    PREHEADER_MAX_CHARS,
    ArticleView,
    IssueView,
    RateView,
    Sender,
    format_date,
)


def rate(change: str, value: str = "0.28490") -> RateView:
    return RateView.from_rate(Rate(pair="TMT/USD", rate=Decimal(value), change_pct=Decimal(change)))


@pytest.mark.parametrize(
    ("change", "direction", "marker", "text"),
    [
        ("0.55", "up", "▲", "+0.55%"),
        ("-1.20", "down", "▼", "−1.20%"),
        ("0", "flat", "▬", "0%"),
        ("-0", "flat", "▬", "0%"),  # the desk's "-0%" is unchanged, never "▼ −0%"
    ],
)
def test_change_has_direction_arrow_and_sign(
    change: str, direction: str, marker: str, text: str
) -> None:
    view = rate(change)
    assert (view.direction, view.marker, view.change_text) == (direction, marker, text)


def test_rate_is_shown_exactly_as_given() -> None:
    assert rate("0").rate_text == "0.28490"
    assert rate("0", "0.0000001").rate_text == "0.0000001"  # str() would give "1E-7"


def test_from_rate_looks_up_the_base_currency_name() -> None:
    view = rate("0")
    assert (view.base_code, view.base_name, view.quote_code) == ("TMT", "Turkmen manat", "USD")


def test_the_five_bulletin_currencies_and_the_regions_have_names() -> None:
    for code in (
        "KGS",
        "KZT",
        "TJS",
        "UZS",
        "TMT",
        "USD",
        "EUR",
        "RUB",
        "CNY",
        "AZN",
        "GEL",
        "AMD",
        "AFN",
        "MNT",
        "TRY",
        "IRR",
        "PKR",
        "INR",
        "BYN",
        "UAH",
        "GBP",
        "JPY",
        "CHF",
    ):
        assert currency_name(code.lower()) == CURRENCY_NAMES[code]
    assert currency_name("XAU") is None


def test_dates_are_spelled_out_whatever_the_locale() -> None:
    assert format_date(dt.date(2025, 12, 11)) == "11 December 2025"


def test_preview_text_uses_the_preheader_when_long_enough(sample: IssueView) -> None:
    assert sample.preview_text == sample.preheader


def test_a_short_preheader_is_topped_up_and_a_long_one_cut_at_a_word(sample: IssueView) -> None:
    topped = replace(sample, preheader="SCO summit").preview_text
    assert topped.startswith("SCO summit – The Western media’s")
    assert len(topped) <= PREHEADER_MAX_CHARS
    assert topped.endswith("…")
    assert " " not in topped[-2:]


@pytest.mark.parametrize(
    "url", ["http://example.com/a", "/news/1", "javascript:alert(1)", "https:///nohost"]
)
def test_article_links_must_be_absolute_https(url: str) -> None:
    with pytest.raises(InvalidInput, match="https"):
        ArticleView(id=1, title="T", paragraphs=("p",), url=url)


def test_sender_needs_an_https_site() -> None:
    with pytest.raises(InvalidInput, match="https"):
        Sender("P", "1 Road", "http://example.com")


def test_language_sets_direction_and_must_be_a_tag(sample: IssueView) -> None:
    assert replace(sample, lang="fa").dir == "rtl"
    assert replace(sample, lang="ru").dir == "ltr"
    with pytest.raises(InvalidInput, match="language"):
        replace(sample, lang='en" onload="x')
