"""Which language a bulletin is written in, and what a language tag may look like. Pure.

The desk writes in the languages of Central Asia and its neighbours, so the guess is made from
the letters those languages do not share rather than by a general-purpose detector: a Kazakh
text is full of ә, ғ, қ, ұ, і, a Tajik one of ҳ, ҷ, ӣ, ӯ, a Kyrgyz one of ң, ө, ү without the
Kazakh letters; Cyrillic text without any of them is Russian. In Latin script, Uzbek shows its
o‘ and g‘ and a frequent q, Turkmen its ä, ň, ý, ž; anything else is English. Shares rather than
counts, so that a Russian article quoting a Kazakh name stays Russian. The editor sees the guess
before importing (``import-bulletin --dry-run``) and can give the language instead (``--lang``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from newsletter.errors import InvalidInput

# BCP 47, as far as email and HTML need it: a 2-3 letter language and optional subtags.
LANG_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
MAX_LANG_TAG_CHARS = 16  # the width of the lang columns
DEFAULT_LANGUAGE = "en"

KAZAKH_ONLY = frozenset("әғқұіһ")
KYRGYZ_AND_KAZAKH = frozenset("ңөү")
TAJIK = frozenset("ҳҷӣӯ")
UZBEK_CYRILLIC = frozenset("ў")
TURKMEN = frozenset("äňýž")
KAZAKH_LATIN = frozenset("áǵıńóú")
PERSIAN = frozenset("پچژگکی")
# Uzbek Latin writes o‘ and g‘ with any of these apostrophes.
UZBEK_APOSTROPHE = re.compile(r"[og][‘’ʻʼ'`]")

# Shares of the script's letters above which a language's own letters decide.
OWN_LETTERS_SHARE = 0.01
KAZAKH_SHARE = 0.03


def detect_language(texts: Iterable[str]) -> str:
    """The language tag the texts are most likely written in; ``en`` when nothing says else."""
    text = " ".join(texts).lower()
    letters = [c for c in text if c.isalpha()]
    cyrillic = [c for c in letters if "\u0400" <= c <= "\u04ff"]
    arabic = [c for c in letters if "\u0600" <= c <= "\u06ff"]
    hebrew = [c for c in letters if "\u0590" <= c <= "\u05ff"]
    latin = [c for c in letters if c.isascii() or "\u00c0" <= c <= "\u024f"]
    script = max(
        (("cyrillic", cyrillic), ("arabic", arabic), ("hebrew", hebrew), ("latin", latin)),
        key=lambda pair: len(pair[1]),
    )
    name, chosen = script
    if not chosen:
        return DEFAULT_LANGUAGE
    if name == "cyrillic":
        return _cyrillic(chosen)
    if name == "arabic":
        return "fa" if any(c in PERSIAN for c in chosen) else "ar"
    if name == "hebrew":
        return "he"
    return _latin(text, chosen)


def _cyrillic(letters: list[str]) -> str:
    def share(alphabet: frozenset[str]) -> float:
        return sum(1 for c in letters if c in alphabet) / len(letters)

    if share(TAJIK) >= OWN_LETTERS_SHARE:
        return "tg"
    if share(UZBEK_CYRILLIC) >= OWN_LETTERS_SHARE:
        return "uz-Cyrl"
    if (
        share(KAZAKH_ONLY) >= OWN_LETTERS_SHARE
        and share(KAZAKH_ONLY | KYRGYZ_AND_KAZAKH) >= KAZAKH_SHARE
    ):
        return "kk"
    if share(KYRGYZ_AND_KAZAKH) >= 2 * OWN_LETTERS_SHARE and share(KAZAKH_ONLY) == 0:
        return "ky"
    return "ru"


def _latin(text: str, letters: list[str]) -> str:
    def share(count: int) -> float:
        return count / len(letters)

    if share(sum(1 for c in letters if c in TURKMEN)) >= OWN_LETTERS_SHARE:
        return "tk"
    if share(sum(1 for c in letters if c in KAZAKH_LATIN)) >= KAZAKH_SHARE:
        return "kk-Latn"
    uzbek = len(UZBEK_APOSTROPHE.findall(text)) + sum(1 for c in letters if c == "q")
    if share(uzbek) >= OWN_LETTERS_SHARE:
        return "uz"
    return DEFAULT_LANGUAGE


def normalise_language_tag(tag: str) -> str:
    """``"RU"`` → ``"ru"``, ``"ru_ru"`` → ``"ru-RU"``; ``InvalidInput`` for anything else.

    Subtags get BCP 47's conventional case: region upper ("RU"), script title ("Cyrl").
    """
    primary, *subtags = tag.strip().replace("_", "-").split("-")
    normalised = "-".join([primary.lower(), *(_subtag_case(s) for s in subtags)])
    if len(normalised) > MAX_LANG_TAG_CHARS or not LANG_TAG.match(normalised):
        raise InvalidInput(
            f"language tag {tag!r} is not a BCP 47 tag like 'en', 'ru' or 'kk' "
            f"(at most {MAX_LANG_TAG_CHARS} characters)"
        )
    return normalised


def _subtag_case(subtag: str) -> str:
    if len(subtag) == 2 and subtag.isalpha():
        return subtag.upper()
    if len(subtag) == 4 and subtag.isalpha():
        return subtag.title()
    return subtag.lower()
