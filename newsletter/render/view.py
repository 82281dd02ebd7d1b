"""What the renderer is given: one issue's articles and rates, already chosen and ordered.

These are plain values (no Session, no ORM rows), so rendering is a pure function of
``IssueView`` + ``Sender`` + the template directory. Per-recipient fields never appear here:
the templates emit markers for them (see ``personalise.py``). Everything that depends on the
issue's language (dates, currency names, digit grouping) is settled here or in the templates'
catalogue, never by the process locale.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from babel.dates import format_date as babel_format_date

from newsletter.config import is_local_url
from newsletter.content.bulletin import Bulletin, Rate
from newsletter.content.images import check_image_url
from newsletter.content.language import LANG_TAG
from newsletter.errors import InvalidInput
from newsletter.issues.modes import IssueMode
from newsletter.render.currencies import currency_name
from newsletter.render.locale import babel_locale
from newsletter.render.rates import RateForm, per_quote_text

Direction = Literal["up", "down", "flat"]

# HTML-06: inbox previews show roughly 40-130 characters; shorter lets body text leak in, longer
# is cut by the client anyway.
PREHEADER_MIN_CHARS = 40
PREHEADER_MAX_CHARS = 130

RTL_LANGUAGES = frozenset({"ar", "ckb", "dv", "fa", "he", "ps", "ug", "ur", "yi"})
WHITESPACE_RUN = re.compile(r"\s+")
# Day first, month spelled out in the issue's language, so no reader misreads 11/12.
DATE_PATTERN = "d MMMM y"
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class ArticleView:
    id: int
    title: str
    paragraphs: tuple[str, ...]  # plain text from the desk; the templates escape it
    url: str | None = None
    image_url: str | None = None
    image_alt: str = ""  # "" marks the image decorative (HTML-07); it is still emitted as alt=""

    def __post_init__(self) -> None:
        _require_https(self.url, f"article {self.id} url")
        if self.image_url is not None:
            check_image_url(self.image_url)  # https, and the same for every reader (no pixel)

    def excerpt(self, words: int | None = None) -> str:
        """What excerpt mode shows: the first paragraph, cut after ``words`` words if given."""
        return excerpt_of(self.paragraphs, words)


@dataclass(frozen=True, slots=True)
class RateView:
    pair: str  # "KGS/USD"
    base_code: str
    base_name: str | None  # None when currencies.py does not know the code
    quote_code: str
    rate: Decimal  # exactly as given
    change_pct: Decimal  # signed
    # "1 USD = 12,500 UZS" beside a rate below 0.01 (rates.py); None: the desk's figure alone.
    per_quote_text: str | None = None

    @classmethod
    def from_rate(cls, rate: Rate, *, lang: str = "en", form: RateForm = RateForm.BOTH) -> RateView:
        return cls(
            pair=rate.pair,
            base_code=rate.base,
            base_name=currency_name(rate.base, lang),
            quote_code=rate.quote,
            rate=rate.rate,
            change_pct=rate.change_pct,
            per_quote_text=(
                per_quote_text(rate.base, rate.quote, rate.rate, lang)
                if form == RateForm.BOTH
                else None
            ),
        )

    @property
    def direction(self) -> Direction:
        if self.change_pct.is_zero():  # Decimal("-0") is zero too: "-0%" is "unchanged"
            return "flat"
        return "up" if self.change_pct > 0 else "down"

    @property
    def marker(self) -> str:
        """The arrow shown beside the number, so direction never depends on colour (WCAG 1.4.1)."""
        return {"up": "▲", "down": "▼", "flat": "▬"}[self.direction]

    @property
    def rate_text(self) -> str:
        # format "f", not str(): str(Decimal("0.0000001")) is "1E-7"; "f" keeps "0.28490" as is.
        return format(self.rate, "f")

    @property
    def change_text(self) -> str:
        """ "+0.55%", "−1.20%" (U+2212 minus) or "0%"; a zero change never carries a sign."""
        sign = {"up": "+", "down": "−", "flat": ""}[self.direction]
        return f"{sign}{format(abs(self.change_pct), 'f')}%"


@dataclass(frozen=True, slots=True)
class IssueView:
    subject: str
    preheader: str  # may be "" or short: ``preview_text`` tops it up from the first paragraph
    date: dt.date
    articles: tuple[ArticleView, ...]
    rates: tuple[RateView, ...]
    rates_date: dt.date | None
    lang: str = "en"
    id: int | None = None  # the stored issue's id: its web version is {base_url}/issues/{id}
    number: int | None = None  # "Issue 12" in the masthead
    mode: IssueMode = IssueMode.FULL
    excerpt_words: int | None = None  # excerpt mode: cut each first paragraph after N words

    def __post_init__(self) -> None:
        if not LANG_TAG.match(self.lang):
            raise InvalidInput(f"language tag {self.lang!r} is not a BCP 47 tag like 'en' or 'ru'")

    @classmethod
    def from_bulletin(
        cls,
        bulletin: Bulletin,
        *,
        subject: str,
        preheader: str = "",
        lang: str = "en",
        rate_form: RateForm = RateForm.BOTH,
        issue_id: int | None = None,
        number: int | None = None,
    ) -> IssueView:
        """Every article of a parsed bulletin, in the desk's order, with no links or images."""
        articles = tuple(
            ArticleView(id=number, title=a.title, paragraphs=a.paragraphs)
            for number, a in enumerate(bulletin.articles, start=1)
        )
        return cls(
            subject=subject,
            preheader=preheader,
            date=bulletin.date,
            articles=articles,
            rates=tuple(RateView.from_rate(r, lang=lang, form=rate_form) for r in bulletin.rates),
            rates_date=bulletin.date,
            lang=lang,
            id=issue_id,
            number=number,
        )

    @property
    def excerpt(self) -> bool:
        return self.mode == IssueMode.EXCERPT

    def web_url(self, base_url: str) -> str | None:
        """The web version of this issue (served by the web app), if it is a stored issue."""
        return None if self.id is None else f"{base_url}/issues/{self.id}"

    def article_url(self, base_url: str, number: int) -> str | None:
        """Article ``number`` (1-based) on the web version: the anchor every template sets."""
        web = self.web_url(base_url)
        return None if web is None else f"{web}#article-{number}"

    @property
    def dir(self) -> Literal["ltr", "rtl"]:
        return "rtl" if self.lang.split("-")[0] in RTL_LANGUAGES else "ltr"

    @property
    def date_text(self) -> str:
        return format_date(self.date, self.lang)

    @property
    def rates_date_text(self) -> str | None:
        return None if self.rates_date is None else format_date(self.rates_date, self.lang)

    @property
    def has_per_quote_rates(self) -> bool:
        return any(r.per_quote_text for r in self.rates)

    @property
    def preview_text(self) -> str:
        """The inbox preview (HTML-06): the preheader, topped up from the first paragraph."""
        text = _one_line(self.preheader)
        if len(text) < PREHEADER_MIN_CHARS:
            fallback = _one_line(self.articles[0].paragraphs[0]) if self.articles else self.subject
            text = f"{text} – {fallback}" if text else fallback
        return _shorten(text, PREHEADER_MAX_CHARS)


@dataclass(frozen=True, slots=True)
class Sender:
    publication: str  # "Central Asia Weekly"; also the h1 and the "why you get this" line
    # One line, required in every commercial email (LAW section). "" renders without it: the
    # pre-send check (render/checks.py) reports the missing address with every other problem.
    postal_address: str
    base_url: str  # the publication's site, https

    def __post_init__(self) -> None:
        # A base URL on this machine (the demo, local use) is the one http:// link allowed:
        # only its own reader can follow it.
        if not is_local_url(self.base_url):
            _require_https(self.base_url, "sender base_url")


@functools.lru_cache(maxsize=256)
def format_date(day: dt.date, lang: str = "en") -> str:
    """ "11 December 2025", "11 декабря 2025", "11 желтоқсан 2025": CLDR's month names."""
    return babel_format_date(day, DATE_PATTERN, locale=babel_locale(lang))


def excerpt_of(paragraphs: tuple[str, ...], words: int | None) -> str:
    """The first paragraph, or its first ``words`` words and an ellipsis when it is longer."""
    first = _one_line(paragraphs[0]) if paragraphs else ""
    split = first.split(" ")
    if words is None or len(split) <= words:
        return first
    return " ".join(split[:words]).rstrip(" ,;:–-") + ELLIPSIS


def _require_https(url: str | None, what: str) -> None:
    # HTML-11: relative links break in every mail client, http ones get a warning in some.
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise InvalidInput(f"{what} must be an absolute https URL, got {url!r}")


def _one_line(text: str) -> str:
    return WHITESPACE_RUN.sub(" ", text).strip()


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:–-") + ELLIPSIS
