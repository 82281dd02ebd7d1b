"""What a bulletin must pass before anything of it is stored. Pure: bytes, text or a parsed
``Bulletin`` in; ``InvalidInput`` out, or warnings.

The checks run around ``parse_bulletin`` (see ``service.import_bulletin``), so both databases
see only values they can store, and they say the same thing about a bad file:

1. ``check_size`` before decoding: a file over the limit is not parsed at all (a 50 MB export
   parsed into 36,852 "articles" and 400 MB of memory);
2. ``check_characters`` on the decoded text: NUL and other control characters are refused
   with their line and column (PostgreSQL refuses a NUL in text, SQLite stores it and the
   render fails later with an obscure MJML error);
3. ``check_bulletin`` on the parsed bulletin: every value fits its column, and articles that
   share a title come back as warnings for the import result.
"""

from __future__ import annotations

import re

from newsletter.content.bulletin import TICKER, Bulletin, clean_line
from newsletter.errors import InvalidInput

MAX_BULLETIN_BYTES = 5 * 1024 * 1024  # the default of NEWSLETTER_MAX_BULLETIN_BYTES
# The rate columns keep the decimal's text as written (``db.ExactDecimal``, a String(40)); a
# test keeps the two in step.
MAX_DECIMAL_CHARS = 40
# Control characters (C0, DEL, C1) and the two XML non-characters. Tab, line breaks and the
# controls the parser folds into a space (\v, \f, \x1c-\x1f, NEL) are left to it.
FORBIDDEN_CHARACTER = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ufffe\uffff]")
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # as parse_bulletin splits lines


def check_size(data: bytes, max_bytes: int = MAX_BULLETIN_BYTES) -> None:
    """Refuse more than ``max_bytes``; ``data`` may be cut at ``max_bytes + 1`` by the reader."""
    if len(data) > max_bytes:
        raise InvalidInput(
            f"the bulletin is larger than {max_bytes / 1024 / 1024:.1f} MB, the limit set by "
            f"NEWSLETTER_MAX_BULLETIN_BYTES ({max_bytes} bytes); is it the desk's weekly export?"
        )


def check_characters(text: str) -> None:
    """Refuse the first control character, naming its line and column (both 1-based)."""
    found = FORBIDDEN_CHARACTER.search(text)
    if found is None:
        return
    before = text[: found.start()]
    breaks = list(LINE_BREAK.finditer(before))
    line_start = breaks[-1].end() if breaks else 0
    character = found.group()
    what = "a NUL byte" if character == "\x00" else "a control character"
    raise InvalidInput(
        f"{what} (U+{ord(character):04X}) is not allowed in a bulletin; remove it and import "
        "again",
        line=len(breaks) + 1,
        column=found.start() - line_start + 1,
    )


def check_field(value: str, what: str) -> None:
    """Refuse a control character in a one-line value an editor typed (a subject)."""
    found = FORBIDDEN_CHARACTER.search(value)
    if found is not None:
        raise InvalidInput(
            f"the {what} holds a control character (U+{ord(found.group()):04X})",
            column=found.start() + 1,
        )


def check_bulletin(bulletin: Bulletin, text: str) -> tuple[str, ...]:
    """Refuse a value its column cannot hold; return the warnings (articles sharing a title).

    ``text`` is the decoded export, to name the line of a rate (rates do not carry one).
    """
    for rate in bulletin.rates:
        for what, value in (("rate", rate.rate), ("change", rate.change_pct)):
            stored = str(value)  # what ExactDecimal writes
            if len(stored) > MAX_DECIMAL_CHARS:
                raise InvalidInput(
                    f"the {what} of {rate.pair} has {len(stored)} characters; "
                    f"at most {MAX_DECIMAL_CHARS} can be stored",
                    line=_rate_line(text, rate.pair),
                )
    return _duplicate_titles(bulletin)


def _duplicate_titles(bulletin: Bulletin) -> tuple[str, ...]:
    first_line: dict[str, int] = {}
    warnings: list[str] = []
    for article in bulletin.articles:
        key = " ".join(article.title.casefold().split())
        if key in first_line:
            warnings.append(
                f"line {article.line}: the headline {article.title[:60]!r} is also the headline "
                f"on line {first_line[key]}; two articles of one bulletin share a title"
            )
        else:
            first_line[key] = article.line
    return tuple(warnings)


def _rate_line(text: str, pair: str) -> int | None:
    for number, raw_line in enumerate(LINE_BREAK.split(text), start=1):
        match = TICKER.match(clean_line(raw_line))
        if match is not None and f"{match['base']}/{match['quote']}" == pair:
            return number
    return None
