"""Read the bulletin's date line in any of the desk's languages. Pure: text in, a date out.

Accepted, in any letter case:

* a day, a month name and a four-digit year, in either order of day and month: English,
  Russian (nominative "декабрь" and genitive "декабря", abbreviations "дек."), Kazakh
  (nominative "желтоқсан" and genitive "желтоқсанның"), Uzbek Latin and Cyrillic, Kyrgyz and
  Tajik; with the year words and day endings those languages write ("2025 г.", "2025 года",
  "2025 жылғы", "2025-yil", "18-dekabr", "18-і", "18th");
* ISO dates (2025-12-18, also with dots or slashes), and day-first or month-first numeric dates
  (18.12.2025, 12/18/2025) when only one reading is a real date. 05.06.2025 reads two ways and
  is refused with both readings named: the desk must not guess which day an issue is dated.

The month names are spelled out here rather than taken from the process locale or looked up at
run time; the tests check them against CLDR (through Babel) for every language listed.
"""

from __future__ import annotations

import datetime as dt
import re

from newsletter.errors import InvalidInput

_MONTH_WORDS: tuple[tuple[str, ...], ...] = (
    # English full names and abbreviations ("sept" is common in newsrooms).
    ("january", "jan"),
    ("february", "feb"),
    ("march", "mar"),
    ("april", "apr"),
    ("may",),
    ("june", "jun"),
    ("july", "jul"),
    ("august", "aug"),
    ("september", "sep", "sept"),
    ("october", "oct"),
    ("november", "nov"),
    ("december", "dec"),
)
# Russian (nominative, genitive, CLDR abbreviations); Kyrgyz writes the same words.
_RUSSIAN: tuple[tuple[str, ...], ...] = (
    ("январь", "января", "янв"),
    ("февраль", "февраля", "февр", "фев"),
    ("март", "марта", "мар"),
    ("апрель", "апреля", "апр"),
    ("май", "мая"),
    ("июнь", "июня", "июн"),
    ("июль", "июля", "июл"),
    ("август", "августа", "авг"),
    ("сентябрь", "сентября", "сент", "сен"),
    ("октябрь", "октября", "окт"),
    ("ноябрь", "ноября", "нояб", "ноя"),
    ("декабрь", "декабря", "дек"),
)
# Kazakh: the nominative a date is written with, and the genitive ("желтоқсанның 18-і").
_KAZAKH: tuple[tuple[str, ...], ...] = (
    ("қаңтар", "қаңтардың"),
    ("ақпан", "ақпанның"),
    ("наурыз", "наурыздың"),
    ("сәуір", "сәуірдің"),
    ("мамыр", "мамырдың"),
    ("маусым", "маусымның"),
    ("шілде", "шілденің"),
    ("тамыз", "тамыздың"),
    ("қыркүйек", "қыркүйектің"),
    ("қазан", "қазанның"),
    ("қараша", "қарашаның"),
    ("желтоқсан", "желтоқсанның"),
)
# Uzbek Latin (with the older "sentyabr"/"oktyabr" spellings) and Uzbek/Tajik Cyrillic.
_UZBEK_TAJIK: tuple[tuple[str, ...], ...] = (
    ("yanvar", "январ"),
    ("fevral", "феврал"),
    ("mart",),
    ("aprel", "апрел"),
    ("may",),
    ("iyun",),
    ("iyul",),
    ("avgust",),
    ("sentabr", "sentyabr", "сентябр"),
    ("oktabr", "oktyabr", "октябр"),
    ("noyabr", "ноябр"),
    ("dekabr", "декабр"),
)
MONTHS: dict[str, int] = {
    word: number
    for table in (_MONTH_WORDS, _RUSSIAN, _KAZAKH, _UZBEK_TAJIK)
    for number, words in enumerate(table, start=1)
    for word in words
}
# Words a date line may carry besides the month: year words ("г.", "года", "жылғы", "yil"),
# Kazakh day endings ("18-і", "20-сы") and English ordinals ("18th").
FILLER_WORDS = frozenset(
    {
        "г",
        "год",
        "года",
        "ж",
        "жыл",
        "жылы",
        "жылғы",
        "yil",
        "yili",
        "йил",
        "йили",
        "і",
        "ы",
        "сі",
        "сы",
        "st",
        "nd",
        "rd",
        "th",
    }
)
# ASCII digits only: ``\d`` would also take other scripts' digits, which ``int`` reads but the
# desk never writes, and ``str.isdigit`` takes "²", which ``int`` refuses.
ISO_LIKE = re.compile(r"^([0-9]{4})[-./]([0-9]{1,2})[-./]([0-9]{1,2})$")
DAY_MONTH_YEAR = re.compile(r"^([0-9]{1,2})[-./]([0-9]{1,2})[-./]([0-9]{4})$")
TOKEN = re.compile(r"[0-9]+|[^\W0-9_]+")
EXAMPLE = "'11 December 2025', '18 декабря 2025' or '2025-12-18'"
ENGLISH_MONTHS = tuple(words[0].capitalize() for words in _MONTH_WORDS)


def parse_date_text(text: str) -> dt.date:
    """The one date ``text`` names; ``InvalidInput`` (without a line) when it names none."""
    line = " ".join(text.split()).strip().lower()
    if match := ISO_LIKE.match(line):
        return _real_date(int(match[1]), int(match[2]), int(match[3]), text)
    if match := DAY_MONTH_YEAR.match(line):
        return _day_or_month_first(int(match[1]), int(match[2]), int(match[3]), text)
    return _worded(line, text)


def _worded(line: str, text: str) -> dt.date:
    numbers: list[str] = []
    months: list[int] = []
    for token in TOKEN.findall(line):
        if token.isascii() and token.isdigit():
            numbers.append(token)
        elif token in MONTHS:
            months.append(MONTHS[token])
        elif token not in FILLER_WORDS:
            raise _not_a_date(text)
    years = [int(n) for n in numbers if len(n) == 4]
    days = [int(n) for n in numbers if len(n) <= 2]
    if len(months) != 1 or len(years) != 1 or len(days) != 1 or len(numbers) != 2:
        raise _not_a_date(text)
    return _real_date(years[0], months[0], days[0], text)


def _day_or_month_first(first: int, second: int, year: int, text: str) -> dt.date:
    day_first = _maybe_date(year, second, first)
    month_first = _maybe_date(year, first, second)
    if day_first and month_first and day_first != month_first:
        raise InvalidInput(
            f"the date {text!r} is ambiguous: day first it is {_spelled(day_first)}, month "
            f"first {_spelled(month_first)}; write it as {day_first.isoformat()} or "
            f"{month_first.isoformat()}, or with the month's name"
        )
    found = day_first or month_first
    if found is None:
        raise InvalidInput(f"{text!r} is not a real date")
    return found


def _maybe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _real_date(year: int, month: int, day: int, text: str) -> dt.date:
    found = _maybe_date(year, month, day)
    if found is None:
        raise InvalidInput(f"{text!r} is not a real date")
    return found


def _spelled(day: dt.date) -> str:
    return f"{day.day} {ENGLISH_MONTHS[day.month - 1]} {day.year}"


def _not_a_date(text: str) -> InvalidInput:
    return InvalidInput(f"expected the bulletin date (e.g. {EXAMPLE}), got {text[:60]!r}")
