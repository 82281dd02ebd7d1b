"""The issue's language for the renderer: gettext catalogues of the templates' fixed words, and
CLDR data (month names, digit grouping, currency names) through Babel.

The catalogues are ``locale/<lang>/LC_MESSAGES/email.po`` beside this file (package data). They
are compiled when first used in a process, not ahead of time: there is no ``.mo`` file to build
or to forget to rebuild after editing a ``.po``. A language without a catalogue reads in English
(the templates' own words) while keeping its own ``lang`` tag and CLDR data.

Updating after a template change (docs/render.md, "Languages")::

    pybabel extract -F newsletter/render/locale/babel.cfg -o newsletter/render/locale/email.pot .
    pybabel update -D email -i newsletter/render/locale/email.pot -d newsletter/render/locale
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from newsletter.errors import RenderError

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "email"
CATALOGUE_LANGUAGES = ("ru", "kk")
FALLBACK_LOCALE = "en"


def candidates(lang: str) -> list[str]:
    """``"ru-RU"`` → ``["ru_RU", "ru"]``: the most specific catalogue or locale first."""
    parts = lang.split("-")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]


@functools.lru_cache(maxsize=32)
def translations(lang: str) -> gettext.NullTranslations:
    """The fixed words in ``lang``; English (the msgids themselves) when there is no catalogue."""
    for candidate in candidates(lang):
        path = LOCALE_DIR / candidate / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.is_file():
            return _compile(path, candidate)
    return gettext.NullTranslations()


@functools.lru_cache(maxsize=32)
def babel_locale(lang: str) -> Locale:
    """CLDR's data for ``lang``, or for English when CLDR does not know it."""
    for candidate in candidates(lang):
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(FALLBACK_LOCALE)


def _compile(path: Path, locale: str) -> gettext.GNUTranslations:
    try:
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=DOMAIN)
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=False)  # an unreviewed (fuzzy) entry stays English
        compiled.seek(0)
        return gettext.GNUTranslations(compiled)
    except (OSError, ValueError) as exc:
        raise RenderError(f"cannot read the {locale} catalogue {path}: {exc}") from exc
