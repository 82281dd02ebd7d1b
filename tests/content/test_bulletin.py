"""Parsing the desk's export: the real sample and the awkward shapes such exports take."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from newsletter.content.bulletin import decode_bulletin, looks_like_headline, parse_bulletin
from newsletter.errors import InvalidInput

SAMPLE_TITLES = [
    "Two-Dimensional Outlook Characterizes Western Media Response to SCO Summit",
    "Kazakhstan and China Cement Strategic Partnership",
    "China Invests over $5 billion in Tajikistan’s Energy Sector",
    "Iran to Provide Kazakhstan with Irrigation Technology",
    "Diplomatic Scandal: Kyrgyz Ambassador Fired for “Khanate of Permissiveness”",
    "New Plant for Deep Processing of Grain in Kostanay, Kazakhstan",
]


def test_sample_parses_into_its_six_articles_and_five_rates(sample_bulletin: bytes) -> None:
    bulletin = parse_bulletin(decode_bulletin(sample_bulletin))

    assert bulletin.date == dt.date(2025, 12, 11)
    assert [a.title for a in bulletin.articles] == SAMPLE_TITLES
    assert [len(a.paragraphs) for a in bulletin.articles] == [5, 10, 6, 3, 5, 6]
    assert [(r.pair, str(r.rate), str(r.change_pct)) for r in bulletin.rates] == [
        ("KGS/USD", "0.01144", "0"),
        ("KZT/USD", "0.00193", "0"),  # "-0%" in the export
        ("TJS/USD", "0.10866", "0.55"),
        ("UZS/USD", "0.00008", "0"),
        ("TMT/USD", "0.28490", "0"),  # the trailing zero is kept as given
    ]


def test_sample_paragraphs_keep_curly_quotes_and_lose_non_breaking_spaces(
    sample_bulletin: bytes,
) -> None:
    bulletin = parse_bulletin(decode_bulletin(sample_bulletin))
    paragraphs = [p for a in bulletin.articles for p in a.paragraphs]

    assert all("\xa0" not in p and "  " not in p for p in paragraphs)
    assert any("“" in p and "”" in p for p in paragraphs)
    assert (
        bulletin.articles[2]
        .paragraphs[0]
        .endswith("Tajikistan’s Ministry of Energy and Water Resources press service")
    )


AWKWARD = (
    "\ufeff• KGS/USD = 87.45 -0.12%\r\n"
    "• EUR/USD = 1.0834 +0.3%\r\n"
    "• KGS/USD = 87.45 -0.12%\r\n"
    "  • RUB/USD = 0.0109 −1.5%\r\n"
    "• AZN/USD = 0.5882 0,00%\r\n"
    "3 March 2026\r\n"
    "\xa0\xa0\r\n"
    "“Silk Road” Revival: Who Pays for the Middle Corridor?\r\n"
    "\r\n"
    "A long paragraph without a final full stop that goes on about freight volumes and rail "
    "gauges and the port of Aktau and never quite ends because the export cut it off\r\n"
    "\xa0\r\n"
    "Is Tajikistan Ready for the Rogun Dam?\r\n"
    "Short answer: not yet.\r\n"
    "\r\n"
    "“We will finish it,” the minister said.\r\n"
    "Uzbekistan Opens Its Skies to “Low-Cost” Carriers\r\n"
    "Three airlines applied this week.\r\n"
)


def test_crlf_export_with_extra_pairs_and_negative_changes_parses() -> None:
    bulletin = parse_bulletin(decode_bulletin(AWKWARD.encode()))

    assert bulletin.date == dt.date(2026, 3, 3)
    assert [(r.pair, r.rate, r.change_pct) for r in bulletin.rates] == [
        ("KGS/USD", Decimal("87.45"), Decimal("-0.12")),
        ("EUR/USD", Decimal("1.0834"), Decimal("0.3")),
        ("RUB/USD", Decimal("0.0109"), Decimal("-1.5")),  # U+2212 minus sign
        ("AZN/USD", Decimal("0.5882"), Decimal("0.00")),  # decimal comma
    ]
    assert [a.title for a in bulletin.articles] == [
        "“Silk Road” Revival: Who Pays for the Middle Corridor?",
        "Is Tajikistan Ready for the Rogun Dam?",
        "Uzbekistan Opens Its Skies to “Low-Cost” Carriers",
    ]
    assert [len(a.paragraphs) for a in bulletin.articles] == [1, 2, 1]


def test_lf_and_crlf_versions_of_one_export_parse_alike(sample_bulletin: bytes) -> None:
    lf = parse_bulletin(decode_bulletin(sample_bulletin))
    crlf = parse_bulletin(decode_bulletin(sample_bulletin.replace(b"\n", b"\r\n")))
    assert lf == crlf


@pytest.mark.parametrize(
    "line",
    [
        "Diplomatic Scandal: Kyrgyz Ambassador Fired for “Khanate of Permissiveness”",
        "“Khanate of Permissiveness” Costs Kyrgyz Ambassador His Post",
        "Will Kazakhstan Join BRICS?",
        "China Invests over $5 billion in Tajikistan’s Energy Sector",
    ],
)
def test_headline_shapes_are_recognised(line: str) -> None:
    assert looks_like_headline(line)


@pytest.mark.parametrize(
    "line",
    [
        "Tokayev opened the talks by hailing China a strategic partner.",
        "Since gaining independence, Tajikistan has implemented 35 energy projects with financial "
        "assistance from China of over $5.3 billion, reports the ministry press service",
        "“We will finish it,” the minister said.",
        "Short answer: not yet.",
    ],
)
def test_paragraph_shapes_are_not_headlines(line: str) -> None:
    assert not looks_like_headline(line)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("• KGS/USD = 0.01144 0%\n• KZT/USD = lots\n11 December 2025\n", 2, "cannot read the rate"),
        (
            "• KGS/USD = 0.01144 0%\nsometime last week\nHeadline Here\nBody.\n",
            2,
            "expected the bulletin date",
        ),
        (
            "11 December 2025\n\nthis starts with a paragraph, not a headline.\n",
            3,
            "expected a headline",
        ),
        (
            "• KGS/USD = 1 0%\n• KGS/USD = 2 0%\n11 December 2025\nA Title Here\nBody.\n",
            2,
            "given twice",
        ),
        (
            "11 December 2025\nFirst Headline Of Note\nBody.\nDangling Headline At The End\n",
            4,
            "has no paragraphs",
        ),
    ],
)
def test_malformed_exports_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_bulletin(text)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")


def test_an_export_without_date_or_articles_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="no bulletin date"):
        parse_bulletin("• KGS/USD = 0.01144 0%\n")
    with pytest.raises(InvalidInput, match="no articles"):
        parse_bulletin("11 December 2025\n\n\xa0\n")


def test_non_utf8_bytes_are_rejected_with_their_line() -> None:
    data = b"11 December 2025\nTitle Of The Piece\n" + b"caf\xe9 society\n"
    with pytest.raises(InvalidInput, match="not UTF-8") as caught:
        decode_bulletin(data)
    assert caught.value.line == 3
