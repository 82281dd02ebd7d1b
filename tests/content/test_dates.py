"""The bulletin's date line in the desk's languages, and numeric dates that could be misread."""

from __future__ import annotations

import datetime as dt

import pytest
from babel.dates import get_month_names

from newsletter.content.dates import parse_date_text
from newsletter.errors import InvalidInput

DECEMBER_18 = dt.date(2025, 12, 18)


@pytest.mark.parametrize(
    "text",
    [
        # English, as the desk writes it today, and the other English orders.
        "18 December 2025",
        "18 Dec 2025",
        "December 18, 2025",
        "December 18 2025",
        "18th December 2025",
        "Dec. 18th, 2025",
        # Russian: the genitive a date takes, the nominative, abbreviations, "г." and "года".
        "18 декабря 2025",
        "18 декабря 2025 г.",
        "18 декабря 2025 года",
        "18 дек. 2025",
        "Декабрь 18, 2025",
        # Kazakh: nominative, as in "18 желтоқсан 2025", and the genitive "желтоқсанның 18-і".
        "18 желтоқсан 2025",
        "18 желтоқсан 2025 ж.",
        "2025 жылғы 18 желтоқсан",
        "Желтоқсанның 18-і, 2025 жыл",
        # Uzbek, Latin and Cyrillic.
        "18-dekabr 2025",
        "2025-yil 18-dekabr",
        "18 Dekabr 2025",
        "18 декабр 2025",
        # Numeric forms: ISO, and day-first or month-first where only one reading is a date.
        "2025-12-18",
        "2025.12.18",
        "18.12.2025",
        "18/12/2025",
        "12/18/2025",
    ],
)
def test_the_desks_date_forms_all_read_as_one_day(text: str) -> None:
    assert parse_date_text(text) == DECEMBER_18


@pytest.mark.parametrize(
    ("locale", "contexts"),
    [
        ("en", ("format", "stand-alone")),
        ("ru", ("format", "stand-alone")),
        ("kk", ("format", "stand-alone")),
        ("uz", ("format", "stand-alone")),
        ("uz_Cyrl", ("format",)),
        ("ky", ("format", "stand-alone")),
        ("tg", ("format",)),
    ],
)
def test_every_cldr_month_name_of_the_regions_languages_is_known(
    locale: str, contexts: tuple[str, ...]
) -> None:
    # CLDR (through Babel) is the reference spelling; our table must read each of its names.
    for context in contexts:
        for month, name in get_month_names("wide", context, locale).items():
            assert parse_date_text(f"3 {name} 2026") == dt.date(2026, month, 3), (locale, name)


def test_russian_and_english_abbreviations_are_known() -> None:
    for locale in ("en", "ru"):
        for month, name in get_month_names("abbreviated", "format", locale).items():
            assert parse_date_text(f"3 {name} 2026") == dt.date(2026, month, 3), (locale, name)


def test_a_date_that_reads_two_ways_is_an_error_naming_both() -> None:
    with pytest.raises(InvalidInput, match="ambiguous") as caught:
        parse_date_text("05.06.2025")
    message = str(caught.value)
    assert "5 June 2025" in message
    assert "6 May 2025" in message
    assert "2025-06-05" in message  # and says how to write it unambiguously


def test_a_day_and_month_that_are_equal_are_not_ambiguous() -> None:
    assert parse_date_text("07.07.2025") == dt.date(2025, 7, 7)


@pytest.mark.parametrize(
    "text",
    [
        "31 February 2025",  # no such day
        "31.02.2025",
        "2025-13-01",
        "13/13/2025",
        "sometime last week",
        "18 Decembre 2025",  # not a month we know
        "18 December",  # no year
        "December 2025",  # no day
        "18 19 December 2025",  # two days
        "Kazakhstan Opens 18 New Schools in December 2025",  # a headline is not a date
    ],
)
def test_lines_that_are_not_one_real_date_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_date_text(text)


@pytest.mark.parametrize("text", ["²", "11 December 2025²", "١١ December 2025"])
def test_digits_of_other_scripts_are_not_a_date(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_date_text(text)
