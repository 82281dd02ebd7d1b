"""Use cases of the content stage: import a bulletin export, look up articles and rates.

An import is two steps a caller may separate: ``preview_bulletin`` reads and checks the export
and says what would be stored (nothing is written, no session needed), ``store_bulletin``
stores a preview. ``import_bulletin`` does both, as the CLI does; a web workspace can show the
preview and store it once the editor agrees.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.content.bulletin import Bulletin, ParsedArticle, decode_bulletin, parse_bulletin
from newsletter.content.language import detect_language, normalise_language_tag
from newsletter.content.models import (
    Article,
    BulletinImport,
    BulletinImportArticle,
    Rate,
    RateSnapshot,
)
from newsletter.content.validation import (
    MAX_BULLETIN_BYTES,
    check_bulletin,
    check_characters,
    check_size,
)
from newsletter.errors import NotFound


@dataclass(frozen=True, slots=True)
class BulletinPreview:
    """What importing an export would store: the parsed bulletin and its language."""

    bulletin: Bulletin
    lang: str
    lang_detected: bool  # False when the editor gave the language
    warnings: tuple[str, ...] = ()  # stored all the same, but worth a look (shared titles)


@dataclass(frozen=True, slots=True)
class ImportResult:
    bulletin_import: BulletinImport
    created: bool  # False when the same bulletin had been imported before
    warnings: tuple[str, ...] = ()  # imported all the same, but worth a look (shared titles)


def preview_bulletin(
    data: bytes, *, lang: str | None = None, max_bytes: int = MAX_BULLETIN_BYTES
) -> BulletinPreview:
    """Check and parse ``data`` and settle its language (given, or detected). Pure.

    The whole file is checked (``validation``: size, characters, lengths) before it is parsed;
    ``max_bytes`` is NEWSLETTER_MAX_BULLETIN_BYTES.
    """
    check_size(data, max_bytes)
    text = decode_bulletin(data)
    check_characters(text)
    bulletin = parse_bulletin(text)
    warnings = check_bulletin(bulletin, text)
    if lang is not None:
        return BulletinPreview(
            bulletin, normalise_language_tag(lang), lang_detected=False, warnings=warnings
        )
    texts = [text for article in bulletin.articles for text in (article.title, *article.paragraphs)]
    return BulletinPreview(bulletin, detect_language(texts), lang_detected=True, warnings=warnings)


def import_bulletin(
    session: Session,
    data: bytes,
    *,
    lang: str | None = None,
    max_bytes: int = MAX_BULLETIN_BYTES,
) -> ImportResult:
    """Parse ``data`` and store it; importing the same bulletin again changes nothing.

    The whole file is parsed and checked before anything is written, so a bad file leaves no
    trace. Given again with an explicit ``lang`` that differs, the import and its articles take
    that language: that is how an editor corrects a wrong guess.
    """
    return store_bulletin(session, preview_bulletin(data, lang=lang, max_bytes=max_bytes))


def store_bulletin(session: Session, preview: BulletinPreview) -> ImportResult:
    """Store a preview; a bulletin stored before is returned as it is (see ``import_bulletin``).

    Another editor may import the same bulletin (or one sharing its articles or rates) at the
    same moment: on PostgreSQL both look, find nothing, and the second one's INSERT waits for
    the first to commit, then collides. The rows are therefore written in a savepoint and, on
    that collision, looked up again, now finding what the other import committed.
    """
    try:
        with session.begin_nested():
            return _store(session, preview)
    except IntegrityError:
        with session.begin_nested():
            return _store(session, preview)


def _store(session: Session, preview: BulletinPreview) -> ImportResult:
    bulletin = preview.bulletin
    warnings = preview.warnings
    fingerprint = _fingerprint(
        {
            "date": bulletin.date.isoformat(),
            "rates": _rates_key(bulletin),
            "articles": [_article_key(a) for a in bulletin.articles],
        }
    )
    existing = session.scalar(
        select(BulletinImport).where(BulletinImport.fingerprint == fingerprint)
    )
    if existing is not None:
        if not preview.lang_detected and existing.lang != preview.lang:
            existing.lang = preview.lang
            for article in existing.articles:
                article.lang = preview.lang
            session.flush()
        return ImportResult(existing, created=False, warnings=warnings)

    record = BulletinImport(
        date=bulletin.date,
        lang=preview.lang,
        fingerprint=fingerprint,
        snapshot=_snapshot(session, bulletin) if bulletin.rates else None,
        entries=[
            BulletinImportArticle(
                position=position,
                article=_article(session, parsed, bulletin.date, preview.lang),
            )
            for position, parsed in enumerate(bulletin.articles)
        ],
    )
    session.add(record)
    session.flush()
    return ImportResult(record, created=True, warnings=warnings)


def latest_import(session: Session) -> BulletinImport:
    record = session.scalar(select(BulletinImport).order_by(BulletinImport.id.desc()).limit(1))
    if record is None:
        raise NotFound("no bulletin has been imported yet; run `newsletter import-bulletin FILE`")
    return record


def get_articles(session: Session, article_ids: list[int]) -> list[Article]:
    """The articles with these ids, in the order given."""
    found = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(article_ids)))}
    missing = [str(i) for i in article_ids if i not in found]
    if missing:
        raise NotFound(f"no article with id {', '.join(missing)}")
    return [found[i] for i in article_ids]


def find_snapshot(session: Session, on: dt.date | None) -> RateSnapshot:
    """The newest snapshot for date ``on``, or the newest of all when ``on`` is None."""
    query = select(RateSnapshot).order_by(RateSnapshot.date.desc(), RateSnapshot.id.desc())
    if on is not None:
        query = query.where(RateSnapshot.date == on)
    snapshot = session.scalar(query.limit(1))
    if snapshot is None:
        raise NotFound(f"no rate snapshot for {on}" if on else "no rate snapshot imported yet")
    return snapshot


def _article(session: Session, parsed: ParsedArticle, source_date: dt.date, lang: str) -> Article:
    fingerprint = article_fingerprint(parsed.title, parsed.paragraphs)
    existing = session.scalar(select(Article).where(Article.fingerprint == fingerprint))
    if existing is not None:
        return existing
    article = Article(
        title=parsed.title,
        paragraphs=list(parsed.paragraphs),
        source_date=source_date,
        lang=lang,
        fingerprint=fingerprint,
    )
    session.add(article)
    return article


def _snapshot(session: Session, bulletin: Bulletin) -> RateSnapshot:
    fingerprint = _fingerprint({"date": bulletin.date.isoformat(), "rates": _rates_key(bulletin)})
    existing = session.scalar(select(RateSnapshot).where(RateSnapshot.fingerprint == fingerprint))
    if existing is not None:
        return existing
    return RateSnapshot(
        date=bulletin.date,
        fingerprint=fingerprint,
        rates=[
            Rate(position=i, pair=r.pair, rate=r.rate, change_pct=r.change_pct)
            for i, r in enumerate(bulletin.rates)
        ],
    )


def article_fingerprint(title: str, paragraphs: Sequence[str]) -> str:
    """What makes two articles the same: their title and paragraphs (see ``Article``)."""
    return _fingerprint({"title": title, "paragraphs": list(paragraphs)})


def _article_key(article: ParsedArticle) -> dict[str, object]:
    return {"title": article.title, "paragraphs": list(article.paragraphs)}


def _rates_key(bulletin: Bulletin) -> list[list[str]]:
    return [[r.pair, str(r.rate), str(r.change_pct)] for r in bulletin.rates]


def _fingerprint(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
