"""Importing a bulletin into the database."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.models import Article, BulletinImport, Rate, RateSnapshot
from newsletter.content.service import (
    ImportResult,
    import_bulletin,
    preview_bulletin,
    store_bulletin,
)
from newsletter.db import session_scope
from newsletter.errors import InvalidInput
from tests.conftest import wait_until_blocked_on_a_lock

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


BULLETINS = Path(__file__).parent / "bulletins"
RUSSIAN = BULLETINS / "bulletin-ru-2025-12-18.txt"


def test_each_hand_written_bulletin_is_stored_exactly(session: Session) -> None:
    for case in sorted(BULLETINS.glob("*.txt")):
        expected = json.loads(case.with_suffix(".json").read_text(encoding="utf-8"))

        record = import_bulletin(session, case.read_bytes()).bulletin_import

        assert record.date.isoformat() == expected["date"]
        assert record.lang == expected["lang"]
        assert record.snapshot is not None
        stored_rates = [[r.pair, str(r.rate), str(r.change_pct)] for r in record.snapshot.rates]
        assert stored_rates == expected["rates"]
        assert [
            {"title": a.title, "paragraphs": list(a.paragraphs)} for a in record.articles
        ] == expected["articles"]
        assert {a.lang for a in record.articles} == {expected["lang"]}


def test_the_language_is_detected_or_given(session: Session, sample_bulletin: bytes) -> None:
    assert import_bulletin(session, sample_bulletin).bulletin_import.lang == "en"
    given = import_bulletin(session, RUSSIAN.read_bytes(), lang="RU_ru").bulletin_import
    assert given.lang == "ru-RU"


def test_a_bad_language_is_refused_before_anything_is_stored(session: Session) -> None:
    before = row_counts(session)
    with pytest.raises(InvalidInput, match="language"):
        import_bulletin(session, RUSSIAN.read_bytes(), lang="russian")
    assert row_counts(session) == before


def test_importing_again_with_another_language_corrects_it(session: Session) -> None:
    first = import_bulletin(session, RUSSIAN.read_bytes())
    counts = row_counts(session)

    again = import_bulletin(session, RUSSIAN.read_bytes(), lang="ky")

    assert not again.created
    assert again.bulletin_import.id == first.bulletin_import.id
    assert again.bulletin_import.lang == "ky"
    assert {a.lang for a in again.bulletin_import.articles} == {"ky"}
    assert row_counts(session) == counts


def test_a_preview_shows_what_would_be_stored_and_stores_nothing(session: Session) -> None:
    before = row_counts(session)

    preview = preview_bulletin(RUSSIAN.read_bytes())

    assert preview.lang == "ru"
    assert preview.lang_detected
    assert preview.bulletin.date.isoformat() == "2025-12-18"
    assert [len(a.paragraphs) for a in preview.bulletin.articles] == [4, 4, 3, 3]
    assert row_counts(session) == before
    stored = store_bulletin(session, preview).bulletin_import
    assert [a.title for a in stored.articles] == [a.title for a in preview.bulletin.articles]


def test_the_same_bulletin_imported_twice_at_once_is_stored_once(
    postgres_settings: Settings, sample_bulletin: bytes
) -> None:
    # PostgreSQL only: there two writers interleave (SQLite queues the second before its check).
    outcome: list[ImportResult | BaseException] = []

    def second_editor() -> None:
        try:
            with session_scope(postgres_settings) as session:
                outcome.append(import_bulletin(session, sample_bulletin))  # its INSERTs wait
        except BaseException as exc:
            outcome.append(exc)

    with session_scope(postgres_settings) as first:
        created = import_bulletin(first, sample_bulletin)  # stored, not committed yet
        racer = threading.Thread(target=second_editor)
        racer.start()
        wait_until_blocked_on_a_lock(postgres_settings.database_url, "INSERT INTO")
    racer.join()

    (second,) = outcome
    assert created.created
    assert isinstance(second, ImportResult), second
    assert not second.created
    assert second.bulletin_import.id == created.bulletin_import.id
    with session_scope(postgres_settings) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(BulletinImport)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Article)) == 6
