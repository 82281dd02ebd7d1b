"""Parse the desk's bulletin text export into a ``Bulletin``. Pure: text in, dataclasses out.

The export looks like this (see ``newsletter/samples/``)::

    • KGS/USD = 0.01144 0%          <- ticker lines, the same five repeated many times
      • KZT/USD = 0.00193 -0%
    11 December 2025                <- the date line, in any of the desk's languages (dates.py)
                                    <- blank lines, or lines holding only non-breaking spaces
    Kazakhstan and China Cement Strategic Partnership      <- a headline
    On July 3 , Kazakhstan President Kassym-Jomart ...     <- its paragraphs, one per line
    Tokayev opened the talks by hailing China ...

Headlines carry no marker. A line is a headline when it has a headline's shape (short, no
sentence-final punctuation, not starting in lower case) and either its words are in title case
(``looks_like_headline``, how the English desk writes) or the structure around it says so: the
block before it ended a sentence and a longer paragraph follows (``_is_headline``). The second
rule needs no capital letters, so it works for sentence-case headlines in any script.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from newsletter.content.dates import parse_date_text
from newsletter.errors import InvalidInput

# "• KGS/USD = 0.01144 0%": the bullet is optional, the minus may be U+2212, a comma may be the
# decimal separator.
TICKER = re.compile(
    r"^[•·*\-]?\s*(?P<base>[A-Z]{3})\s*/\s*(?P<quote>[A-Z]{3})\s*=\s*"
    r"(?P<rate>[+]?\d+(?:[.,]\d+)?)\s+(?P<change>[+\-−]?\d+(?:[.,]\d+)?)\s*%$"
)
LOOKS_LIKE_TICKER = re.compile(r"^[•·*]\s*[A-Z]{3}\s*/")
# Characters a headline never ends with (a question mark may end one).
SENTENCE_END = ".!:;,…"
# Characters that end a sentence, so that a headline may follow the block they end.
SENTENCE_FINAL = ".!?…"
CLOSING_QUOTES = "\"'”’»)]"
MAX_HEADLINE_CHARS = 200
MIN_TITLE_CASE_SHARE = 0.5
# Invisible characters no script needs: BOM, zero-width space, word joiner.
INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u2060"), None)
# Zero-width (non-)joiners are letters' business in Persian, Kurdish, Indic scripts and emoji:
# kept inside a line, meaningless at its ends (where exports leave stray ones).
JOINERS = "\u200c\u200d"
WHITESPACE_RUN = re.compile(r"\s+")  # \s covers NBSP and the other Unicode spaces


@dataclass(frozen=True, slots=True)
class Rate:
    pair: str  # "KGS/USD"
    rate: Decimal  # exactly as given: Decimal("0.28490") keeps its trailing zero
    change_pct: Decimal  # signed; "-0%" is 0

    @property
    def base(self) -> str:
        return self.pair.split("/")[0]

    @property
    def quote(self) -> str:
        return self.pair.split("/")[1]


@dataclass(frozen=True, slots=True)
class ParsedArticle:
    title: str
    paragraphs: tuple[str, ...]
    line: int  # line number of the headline, for error messages


@dataclass(frozen=True, slots=True)
class Bulletin:
    date: dt.date
    rates: tuple[Rate, ...]
    articles: tuple[ParsedArticle, ...]


def decode_bulletin(data: bytes) -> str:
    """Decode the export as UTF-8 (with or without BOM); a bad byte is an error naming its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the export as UTF-8", line=line
        ) from exc


def parse_bulletin(text: str) -> Bulletin:
    """Parse a whole export; raise ``InvalidInput`` with the line number of the first problem."""
    rates: dict[str, Rate] = {}
    date: dt.date | None = None
    blocks: list[tuple[int, str]] = []  # (line number, cleaned text) of every content line

    for number, raw_line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        line = clean_line(raw_line)
        if not line:
            continue
        if LOOKS_LIKE_TICKER.match(line) or TICKER.match(line):
            _add_rate(rates, parse_ticker(line, number), number)
        elif date is None:
            date = parse_date(line, number)
        else:
            blocks.append((number, line))

    if date is None:
        raise InvalidInput("no bulletin date line (e.g. '11 December 2025') found")
    return Bulletin(date=date, rates=tuple(rates.values()), articles=_articles(blocks))


def clean_line(raw: str) -> str:
    """Collapse every run of whitespace (NBSP included) into one space and trim the ends.

    Joiners at the ends go too; inside the line they stay, where the script needs them.
    """
    return WHITESPACE_RUN.sub(" ", raw.translate(INVISIBLE)).strip().strip(JOINERS).strip()


def parse_ticker(line: str, number: int) -> Rate:
    match = TICKER.match(line)
    if match is None:
        raise InvalidInput(
            f"cannot read the rate line {line!r} (expected '• KGS/USD = 0.01144 0%')", line=number
        )
    rate = _decimal(match["rate"], number)
    change = _decimal(match["change"].replace("−", "-"), number)
    if change.is_zero():
        change = abs(change)  # the desk writes "-0%" for an unchanged rate
    return Rate(pair=f"{match['base']}/{match['quote']}", rate=rate, change_pct=change)


def parse_date(line: str, number: int) -> dt.date:
    try:
        return parse_date_text(line)
    except InvalidInput as exc:
        raise InvalidInput(str(exc), line=number) from exc


def looks_like_headline(line: str) -> bool:
    """The title-case rule: headline-shaped, and most of its long words are capitalised.

    How the English desk writes; it needs no context, so it also finds a headline after a
    paragraph that the export cut off mid-sentence.
    "Diplomatic Scandal: Kyrgyz Ambassador Fired for “Khanate of Permissiveness”" is one;
    "Since gaining independence, Tajikistan has implemented 35 energy projects" is not,
    although it has no final full stop either.
    """
    if len(line) > MAX_HEADLINE_CHARS:
        return False
    if line.rstrip(CLOSING_QUOTES)[-1:] in SENTENCE_END:
        return False
    words = [w.strip("“”\"'‘’«»()[]:,") for w in line.split()]
    long_words = [w for w in words if len(w) >= 4 and w[:1].isalpha()]
    if not long_words:
        return False
    capitalised = sum(1 for w in long_words if w[0].isupper())
    return capitalised / len(long_words) >= MIN_TITLE_CASE_SHARE


def has_headline_shape(line: str) -> bool:
    """Short, not ending a sentence, not the lower-case tail of one (in any script)."""
    if len(line) > MAX_HEADLINE_CHARS or line.rstrip(CLOSING_QUOTES)[-1:] in SENTENCE_END:
        return False
    first_letter = next((c for c in line if c.isalpha()), "")
    return bool(first_letter) and not first_letter.islower()


def ends_sentence(line: str) -> bool:
    return line.rstrip(CLOSING_QUOTES)[-1:] in SENTENCE_FINAL


def _is_headline(blocks: list[tuple[int, str]], index: int) -> bool:
    line = blocks[index][1]
    if looks_like_headline(line):
        return True
    if not has_headline_shape(line):
        return False
    # By structure: the block before ended a sentence (or there is none) and the next one is
    # a longer paragraph, which is what a headline introduces.
    after_sentence = index == 0 or ends_sentence(blocks[index - 1][1])
    followed_by_longer = index + 1 < len(blocks) and len(blocks[index + 1][1]) > len(line)
    return after_sentence and followed_by_longer


def _articles(blocks: list[tuple[int, str]]) -> tuple[ParsedArticle, ...]:
    articles: list[ParsedArticle] = []
    title: tuple[int, str] | None = None
    paragraphs: list[str] = []

    def finish() -> None:
        if title is None:
            return
        if not paragraphs:
            raise InvalidInput(f"the headline {title[1][:60]!r} has no paragraphs", line=title[0])
        articles.append(ParsedArticle(title=title[1], paragraphs=tuple(paragraphs), line=title[0]))

    for index, (number, line) in enumerate(blocks):
        if (title is None or paragraphs) and _is_headline(blocks, index):
            finish()
            title, paragraphs = (number, line), []
        elif title is None:
            raise InvalidInput(
                f"expected a headline before the first paragraph, got {line[:60]!r}", line=number
            )
        else:
            paragraphs.append(line)
    finish()
    if not articles:
        raise InvalidInput("the bulletin has no articles")
    return tuple(articles)


def _add_rate(rates: dict[str, Rate], rate: Rate, number: int) -> None:
    seen = rates.get(rate.pair)
    if seen is None:
        rates[rate.pair] = rate
    elif (seen.rate, seen.change_pct) != (rate.rate, rate.change_pct):
        raise InvalidInput(
            f"{rate.pair} is given twice with different values "
            f"({seen.rate} {seen.change_pct}% and {rate.rate} {rate.change_pct}%)",
            line=number,
        )


def _decimal(text: str, number: int) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as exc:
        raise InvalidInput(f"{text!r} is not a number", line=number) from exc
