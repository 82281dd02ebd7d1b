"""Rates a reader can use: a tiny rate turned round into "1 USD = 12,500 UZS". Pure.

The desk quotes every currency against the dollar ("UZS/USD = 0.00008": one som is 0.00008
dollars). Below a cent that figure means nothing to a reader, who thinks in som per dollar, so it
is also shown the other way round, rounded to whole units: 1 / 0.00008 = 12,500. The desk's
figure stays as given beside it; which forms show is the ``NEWSLETTER_RATE_FORM`` setting.
"""

from __future__ import annotations

import enum
from decimal import ROUND_HALF_EVEN, Decimal

from babel.numbers import format_decimal

from newsletter.render.locale import babel_locale

# Below this a rate is turned round; at or above it (KGS/USD = 0.01144) it reads well enough.
PER_QUOTE_BELOW = Decimal("0.01")
WHOLE_UNITS = Decimal(1)


class RateForm(enum.StrEnum):
    BOTH = "both"  # the desk's figure, and "1 USD = …" beside it for rates below 0.01
    DESK = "desk"  # the desk's figure only


def per_quote(rate: Decimal) -> Decimal | None:
    """How many base units one quote unit buys, when ``rate`` is positive and below 0.01."""
    if not Decimal(0) < rate < PER_QUOTE_BELOW:
        return None
    # Whole units: the inverse of a rate below 0.01 is over 100, so rounding costs < 0.5 %.
    return (WHOLE_UNITS / rate).quantize(WHOLE_UNITS, rounding=ROUND_HALF_EVEN)


def per_quote_text(base: str, quote: str, rate: Decimal, lang: str) -> str | None:
    """ "1 USD = 12,500 UZS", grouped as the reader's language groups digits.

    A no-break space holds the amount to its currency, so a narrow column breaks the line only
    after "=" ("1 USD =" / "12,500 UZS").
    """
    amount = per_quote(rate)
    if amount is None:
        return None
    return f"1 {quote} = {format_decimal(amount, locale=babel_locale(lang))}\u00a0{base}"
