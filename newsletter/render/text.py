"""Plain-text formatting for the text/plain part: wrapping and the aligned rate table.

Registered as Jinja filters for ``text.txt.j2``; kept out of the template because alignment and
wrapping are arithmetic, which reads badly in Jinja.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from newsletter.render.view import RateView

# 78 per RFC 5322 2.1.1 ("SHOULD be no more than 78 characters"); readable in any terminal client.
TEXT_WIDTH_CHARS = 78
# Whitespace textwrap would turn into spaces (tabs it would expand): a line with any is wrapped.
CONTROL_WHITESPACE = re.compile(r"[\t\n\r\x0b\x0c]")


def wrap_text(text: str, width: int = TEXT_WIDTH_CHARS) -> str:
    """Wrap one paragraph; a URL or other unbreakable word longer than ``width`` stays whole."""
    if len(text) <= width and text == text.strip() and not CONTROL_WHITESPACE.search(text):
        # What textwrap would return anyway, without its cost (headlines, labels, list lines).
        return text
    # break_on_hyphens=False: "Kassym-Jomart" and "us-versus-them" must not split across lines.
    return (
        "\n".join(textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False))
        or text
    )


def heading(text: str, rule: str = "-") -> str:
    """The wrapped text underlined with ``rule`` as long as its longest line."""
    wrapped = wrap_text(text)
    return f"{wrapped}\n{rule * max(len(line) for line in wrapped.splitlines())}"


def rate_table(
    rates: Sequence[RateView],
    currency: str = "Currency",
    pair: str = "Pair",
    rate: str = "Rate",
    change: str = "Change",
) -> str:
    """Rates as aligned columns; the change keeps its ▲/▼/▬ so direction survives plain text.

    The headers are given by the template (translated); a last, unheaded column holds
    "1 USD = 12,500 UZS" where the view has one (``RateView.per_quote_text``).
    """
    header = (currency, pair, rate, change, "")
    rows = [
        (
            r.base_name or r.base_code,
            r.pair,
            r.rate_text,
            f"{r.marker} {r.change_text}",
            r.per_quote_text or "",
        )
        for r in rates
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, str, str, str, str]) -> str:
        name, code, figure, moved, per_quote = row
        # The rate is right-aligned so its decimal places line up for same-length figures.
        return (
            f"{name:<{widths[0]}}  {code:<{widths[1]}}  {figure:>{widths[2]}}  "
            f"{moved:<{widths[3]}}  {per_quote}"
        ).rstrip()

    return "\n".join(line(row) for row in [header, *rows])
