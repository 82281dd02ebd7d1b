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


# --- Headlines by structure, in any script ---------------------------------------------------

SENTENCE_CASE = (
    "• KGS/USD = 0.01144 0%\n"
    "18 декабря 2025\n"
    "\xa0\n"
    "Казахстан и Китай договорились о новом транзитном коридоре\n"
    "\n"
    "Стороны подписали соглашение о строительстве второй ветки железной дороги через "
    "Хоргос, сообщает пресс-служба министерства транспорта.\n"
    "\n"
    "Первые составы пойдут по новой ветке в 2027 году.\n"
    "\n"
    "Өзбекстан мен Қазақстан су бөлу туралы келісті\n"
    "\n"
    "Екі ел Сырдария өзенінің суын бөлу жөніндегі жаңа келісімге қол қойды, деп хабарлады "
    "Су ресурстары министрлігі.\n"
    "\n"
    "O‘zbekiston va Qirg‘iziston chegara kelishuvini imzoladi\n"
    "\n"
    "Ikki davlat rahbarlari chegaraning so‘nggi bahsli qismlari bo‘yicha kelishuvni "
    "Toshkentda imzoladilar.\n"
)


def test_sentence_case_headlines_are_found_by_structure_in_any_script() -> None:
    bulletin = parse_bulletin(SENTENCE_CASE)

    assert bulletin.date == dt.date(2025, 12, 18)
    assert [a.title for a in bulletin.articles] == [
        "Казахстан и Китай договорились о новом транзитном коридоре",
        "Өзбекстан мен Қазақстан су бөлу туралы келісті",
        "O‘zbekiston va Qirg‘iziston chegara kelishuvini imzoladi",
    ]
    assert [len(a.paragraphs) for a in bulletin.articles] == [2, 1, 1]
    assert [a.line for a in bulletin.articles] == [4, 10, 14]


@pytest.mark.parametrize(
    ("before", "line", "after"),
    [
        # The block before did not end a sentence: this line continues it.
        (
            "The ministry said the talks would resume in spring and that the first",
            "shipments could arrive before the summer season",
            "Officials declined to give a date for the next round, citing the weather and "
            "the state of the roads.",
        ),
        # Followed by a shorter line, not by the longer paragraph a headline introduces.
        ("The talks ended on Friday.", "Officials said little", "Nothing more."),
        # A short line that starts with a lower-case letter is the tail of a sentence.
        (
            "The talks ended on Friday.",
            "according to the ministry press service",
            "Officials declined to give a date for the next round, citing the weather and "
            "the state of the roads.",
        ),
        # Ending a sentence or introducing a quote: never a headline.
        (
            "The talks ended on Friday.",
            "The minister said:",
            "“We will meet again in spring, and we will bring the engineers with us this time.”",
        ),
    ],
)
def test_a_short_line_that_the_structure_does_not_mark_stays_a_paragraph(
    before: str, line: str, after: str
) -> None:
    text = f"11 December 2025\nA Title For The Piece\n{before}\n{line}\n{after}\n"
    (article,) = parse_bulletin(text).articles
    assert article.paragraphs == (before, line, after)


def test_a_headline_after_a_question_starts_a_new_article() -> None:
    text = (
        "11 December 2025\n"
        "Who pays for the corridor\n"
        "Nobody has said so far, but will the answer come before the summit?\n"
        "Tajikistan opens a new power line\n"
        "The line links the Rogun plant with the capital and carries 500 kV over 198 km.\n"
    )
    assert [a.title for a in parse_bulletin(text).articles] == [
        "Who pays for the corridor",
        "Tajikistan opens a new power line",
    ]


def test_zero_width_joiners_inside_words_are_kept_and_stray_ones_dropped() -> None:
    # Persian (and Tajik in Perso-Arabic script) needs U+200C inside words such as "می‌رود".
    title = "ایران به قزاقستان فناوری آبیاری می\u200cدهد"
    paragraph = "وزیر گفت که شرکت\u200cهای ایرانی آماده\u200cاند و کار از بهار آغاز می\u200cشود."
    text = f"11 December 2025\n\u200c{title}\u200c\n\u200b{paragraph}\n\u200c\n"
    (article,) = parse_bulletin(text).articles
    assert article.title == title
    assert article.paragraphs == (paragraph,)


def test_the_date_line_may_be_in_the_desks_other_languages() -> None:
    for line in ("18 желтоқсан 2025", "2025-yil 18-dekabr", "18.12.2025", "2025-12-18"):
        text = f"{line}\nA Title For The Piece\nBody text of the piece.\n"
        assert parse_bulletin(text).date == dt.date(2025, 12, 18), line


def test_an_ambiguous_date_line_is_an_error_with_its_line() -> None:
    with pytest.raises(InvalidInput, match="ambiguous") as caught:
        parse_bulletin("• KGS/USD = 0.01144 0%\n05.06.2025\nA Title Here\nBody.\n")
    assert caught.value.line == 2
