"""English names of the currencies the desk quotes, so a rate row reads "Kyrgyz som", not "KGS".

A code missing here is shown as the bare code; the table never guesses a name.
"""

from __future__ import annotations

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


def currency_name(code: str) -> str | None:
    """The English name of ``code`` (case-insensitive), or None when we do not know it."""
    return CURRENCY_NAMES.get(code.upper())
