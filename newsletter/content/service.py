"""Use cases of the content stage: import a bulletin export, look up articles and rates."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content.bulletin import Bulletin, ParsedArticle, decode_bulletin, parse_bulletin
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
class ImportResult:
    bulletin_import: BulletinImport
    created: bool  # False when the same bulletin had been imported before
    warnings: tuple[str, ...] = ()  # imported all the same, but worth a look (shared titles)


def import_bulletin(
    session: Session, data: bytes, *, max_bytes: int = MAX_BULLETIN_BYTES
) -> ImportResult:
    """Parse ``data`` and store it; importing the same bulletin again changes nothing.

    The whole file is parsed and checked (``validation``) before anything is written, so a
    bad file leaves no trace; ``max_bytes`` is NEWSLETTER_MAX_BULLETIN_BYTES.
    """
    check_size(data, max_bytes)
    text = decode_bulletin(data)
    check_characters(text)
    bulletin = parse_bulletin(text)
    warnings = check_bulletin(bulletin, text)
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
        return ImportResult(existing, created=False, warnings=warnings)

    record = BulletinImport(
        date=bulletin.date,
        fingerprint=fingerprint,
        snapshot=_snapshot(session, bulletin) if bulletin.rates else None,
        entries=[
            BulletinImportArticle(
                position=position, article=_article(session, parsed, bulletin.date)
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


def _article(session: Session, parsed: ParsedArticle, source_date: dt.date) -> Article:
    fingerprint = _fingerprint(_article_key(parsed))
    existing = session.scalar(select(Article).where(Article.fingerprint == fingerprint))
    if existing is not None:
        return existing
    article = Article(
        title=parsed.title,
        paragraphs=list(parsed.paragraphs),
        source_date=source_date,
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


def _article_key(article: ParsedArticle) -> dict[str, object]:
    return {"title": article.title, "paragraphs": list(article.paragraphs)}


def _rates_key(bulletin: Bulletin) -> list[list[str]]:
    return [[r.pair, str(r.rate), str(r.change_pct)] for r in bulletin.rates]


def _fingerprint(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
