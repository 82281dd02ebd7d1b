"""Rates a reader can use: "1 USD = 12,500 UZS" beside the desk's figure, kept exactly."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import html as lxml_html

from newsletter.content.bulletin import Rate
from newsletter.render.email import render_email
from newsletter.render.rates import RateForm, per_quote, per_quote_text
from newsletter.render.view import IssueView, RateView
from tests.render.samples import SENDER, TEMPLATE_DIR, sample_bulletin

RATES_TABLE = "//table[./thead/tr/th[@scope='col']]"


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("0.00008", Decimal("12500")),  # UZS/USD in the sample
        ("0.00193", Decimal("518")),  # KZT/USD: 518.13… rounded to whole units
        ("0.0000001", Decimal("10000000")),
        ("0.009999", Decimal("100")),
    ],
)
def test_a_small_rate_is_turned_round_to_whole_units(rate: str, expected: Decimal) -> None:
    assert per_quote(Decimal(rate)) == expected


@pytest.mark.parametrize("rate", ["0.01", "0.01144", "0.28490", "87.45", "0", "-0.00008"])
def test_rates_of_a_cent_or_more_and_nonsense_are_not_turned_round(rate: str) -> None:
    assert per_quote(Decimal(rate)) is None


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        # A no-break space holds the amount to its code: a narrow column wraps after "=".
        ("en", "1 USD = 12,500\xa0UZS"),
        ("ru", "1 USD = 12\xa0500\xa0UZS"),  # the reader's digit grouping
        ("kk", "1 USD = 12\xa0500\xa0UZS"),
        ("xx", "1 USD = 12,500\xa0UZS"),  # a language CLDR does not know: English grouping
    ],
)
def test_the_per_usd_figure_uses_the_readers_digit_grouping(lang: str, expected: str) -> None:
    rate = Rate(pair="UZS/USD", rate=Decimal("0.00008"), change_pct=Decimal("0"))
    assert per_quote_text(rate.base, rate.quote, rate.rate, lang) == expected


def test_the_setting_chooses_whether_the_per_usd_figure_shows() -> None:
    rate = Rate(pair="UZS/USD", rate=Decimal("0.00008"), change_pct=Decimal("0"))
    assert RateView.from_rate(rate).per_quote_text == "1 USD = 12,500\xa0UZS"
    assert RateView.from_rate(rate, form=RateForm.DESK).per_quote_text is None
    both = RateView.from_rate(rate, form=RateForm.BOTH)
    assert both.rate_text == "0.00008"  # the desk's figure stays exactly as given


def rate_cells(issue: IssueView) -> dict[str, tuple[str, str]]:
    doc = lxml_html.document_fromstring(render_email(issue, SENDER, TEMPLATE_DIR).html)
    (table,) = doc.xpath(RATES_TABLE)
    return {
        row.xpath("./th//span[@class='nl-code']")[0].text_content(): (
            " ".join(row.xpath("./td")[0].itertext()).replace("\xa0", " "),
            row.xpath("./td")[1].text_content(),
        )
        for row in table.xpath("./tbody/tr")
    }


def test_the_html_shows_both_figures_and_keeps_sign_and_arrow() -> None:
    issue = IssueView.from_bulletin(sample_bulletin(), subject="Weekly")
    cells = rate_cells(issue)

    assert cells["UZS/USD"] == ("0.00008 1 USD = 12,500 UZS", "▬ 0%")
    assert cells["KZT/USD"] == ("0.00193 1 USD = 518 KZT", "▬ 0%")
    assert cells["TMT/USD"] == ("0.28490", "▬ 0%")
    assert cells["TJS/USD"] == ("0.10866", "▲ +0.55%")


def test_with_the_desk_form_only_the_desks_figure_shows() -> None:
    issue = IssueView.from_bulletin(sample_bulletin(), subject="Weekly", rate_form=RateForm.DESK)
    assert rate_cells(issue)["UZS/USD"] == ("0.00008", "▬ 0%")
    assert "1 USD =" not in render_email(issue, SENDER, TEMPLATE_DIR).text


def test_the_text_part_shows_the_per_usd_figure_in_its_own_column() -> None:
    issue = IssueView.from_bulletin(sample_bulletin(), subject="Weekly")
    lines = render_email(issue, SENDER, TEMPLATE_DIR).text.splitlines()

    # The change column is as wide as its widest cell ("▲ +0.55%"), so the new one aligns.
    assert "Uzbek som      UZS/USD  0.00008  ▬ 0%      1 USD = 12,500\xa0UZS" in lines
    assert "Kazakh tenge   KZT/USD  0.00193  ▬ 0%      1 USD = 518\xa0KZT" in lines
    assert "Turkmen manat  TMT/USD  0.28490  ▬ 0%" in lines


def test_a_falling_small_rate_keeps_its_sign_and_arrow_beside_the_per_usd_figure() -> None:
    base = IssueView.from_bulletin(sample_bulletin(), subject="Weekly")
    falling = RateView.from_rate(
        Rate(pair="UZS/USD", rate=Decimal("0.00008"), change_pct=Decimal("-1.5"))
    )
    issue = replace(base, rates=(falling,))
    assert rate_cells(issue)["UZS/USD"] == ("0.00008 1 USD = 12,500 UZS", "▼ −1.5%")
    text = render_email(issue, SENDER, TEMPLATE_DIR).text
    assert "Uzbek som  UZS/USD  0.00008  ▼ −1.5%  1 USD = 12,500\xa0UZS" in text
