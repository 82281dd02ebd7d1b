"""Names of the currencies the desk quotes, so a rate row reads "Kyrgyz som", not "KGS".

English names are our own table (CLDR's English says "Kyrgystani Som"); other languages take
CLDR's names through Babel ("Киргизский сом", "Қырғызстан сомы"). A code neither knows is shown
as the bare code; nothing guesses a name.
"""

from __future__ import annotations

from babel.numbers import get_currency_name

from newsletter.render.locale import babel_locale

# ISO 4217 code -> English name as a reader expects it in a sentence (lower-case "euro" on purpose:
# the EU style guide does not capitalise it).
CURRENCY_NAMES: dict[str, str] = {
    # The five the bulletin always carries.
    "KGS": "Kyrgyz som",
    "KZT": "Kazakh tenge",
    "TJS": "Tajik somoni",
    "UZS": "Uzbek som",
    "TMT": "Turkmen manat",
    # Quote currencies and major partners.
    "USD": "US dollar",
    "EUR": "euro",
    "RUB": "Russian ruble",
    "CNY": "Chinese yuan",
    "GBP": "British pound",
    "JPY": "Japanese yen",
    "CHF": "Swiss franc",
    # The region's neighbours.
    "AZN": "Azerbaijani manat",
    "GEL": "Georgian lari",
    "AMD": "Armenian dram",
    "AFN": "Afghan afghani",
    "MNT": "Mongolian tögrög",
    "TRY": "Turkish lira",
    "IRR": "Iranian rial",
    "PKR": "Pakistani rupee",
    "INR": "Indian rupee",
    "BYN": "Belarusian ruble",
    "UAH": "Ukrainian hryvnia",
}


def currency_name(code: str, lang: str = "en") -> str | None:
    """The name of ``code`` (case-insensitive) in ``lang``, or None when we do not know it."""
    code = code.upper()
    locale = babel_locale(lang)
    if locale.language == "en":
        return CURRENCY_NAMES.get(code)
    name = get_currency_name(code, locale=locale)
    # CLDR writes names in running-text case ("киргизский сом"); a table cell starts a line.
    return name[:1].upper() + name[1:] if name and name != code else None
