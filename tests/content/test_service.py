"""Importing a bulletin into the database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.content.models import Article, BulletinImport, Rate, RateSnapshot
from newsletter.content.service import import_bulletin
from newsletter.errors import InvalidInput

TABLES = (Article, BulletinImport, RateSnapshot, Rate)


def row_counts(session: Session) -> dict[str, int]:
    return {
        model.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
        for model in TABLES
    }


def test_import_stores_articles_in_order_and_rates_exactly(
    session: Session, sample_bulletin: bytes
) -> None:
    result = import_bulletin(session, sample_bulletin)

    record = result.bulletin_import
    assert result.created
    assert [len(a.paragraphs) for a in record.articles] == [5, 10, 6, 3, 5, 6]
    assert record.snapshot is not None
    assert [(r.pair, str(r.rate)) for r in record.snapshot.rates][-1] == ("TMT/USD", "0.28490")


def test_importing_the_same_file_twice_duplicates_nothing(
    session: Session, sample_bulletin: bytes
) -> None:
    first = import_bulletin(session, sample_bulletin)
    counts = row_counts(session)

    second = import_bulletin(session, sample_bulletin.replace(b"\n", b"\r\n"))

    assert not second.created
    assert second.bulletin_import.id == first.bulletin_import.id
    assert row_counts(session) == counts


def test_a_malformed_file_leaves_the_database_unchanged(
    session: Session, sample_bulletin: bytes
) -> None:
    before = row_counts(session)
    broken = sample_bulletin + "\n• KGS/USD = 0.02 0%\n".encode()  # conflicting second value

    with pytest.raises(InvalidInput) as caught:
        import_bulletin(session, broken)

    assert caught.value.line is not None
    assert row_counts(session) == before
