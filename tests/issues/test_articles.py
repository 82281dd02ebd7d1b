"""Correcting how an import was split into articles, and giving an article its image."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.content.models import Article, BulletinImport
from newsletter.content.service import article_fingerprint, import_bulletin
from newsletter.errors import InvalidInput, InvalidTransition, NotFound
from newsletter.issues.articles import merge_articles, set_article_image, split_article
from newsletter.issues.models import IssueStatus
from newsletter.issues.service import create_issue


def titles(record: BulletinImport) -> list[str]:
    return [a.title for a in record.articles]


def test_merging_makes_the_second_headline_a_paragraph_of_the_first(
    session: Session, sample_bulletin: bytes
) -> None:
    record = import_bulletin(session, sample_bulletin).bulletin_import
    first, second = record.articles[1], record.articles[2]
    second_id, second_title = second.id, second.title
    expected = [*first.paragraphs, second.title, *second.paragraphs]
    issue = create_issue(session, subject="x")
    issue.transition(IssueStatus.RENDERED)

    merged = merge_articles(session, first.id, second_id)

    assert merged.id == first.id
    assert merged.paragraphs == expected
    assert merged.fingerprint == article_fingerprint(merged.title, expected)
    assert second_title not in titles(record)
    assert len(record.articles) == 5
    assert [a.id for a in issue.articles] == [a.id for a in record.articles]
    assert issue.status == IssueStatus.DRAFT  # must be rendered again
    assert session.get(Article, second_id) is None


def test_splitting_at_a_paragraph_makes_it_the_headline_of_a_new_article(
    session: Session, sample_bulletin: bytes
) -> None:
    record = import_bulletin(session, sample_bulletin).bulletin_import
    article = record.articles[1]  # ten paragraphs
    paragraphs = list(article.paragraphs)
    issue = create_issue(session, subject="x", article_ids=[article.id, record.articles[0].id])

    kept, new = split_article(session, article.id, at=4)

    assert kept.id == article.id
    assert kept.paragraphs == paragraphs[:3]
    assert (new.title, new.paragraphs) == (paragraphs[3], paragraphs[4:])
    assert (new.lang, new.source_date) == (article.lang, article.source_date)
    assert [a.id for a in record.articles][1:3] == [kept.id, new.id]
    assert [a.id for a in issue.articles] == [kept.id, new.id, record.articles[0].id]


def test_split_and_merge_undo_each_other(session: Session, sample_bulletin: bytes) -> None:
    record = import_bulletin(session, sample_bulletin).bulletin_import
    before = [(a.title, list(a.paragraphs)) for a in record.articles]
    target = record.articles[4]

    _, new = split_article(session, target.id, at=3)
    merge_articles(session, target.id, new.id)

    assert [(a.title, list(a.paragraphs)) for a in record.articles] == before


@pytest.mark.parametrize("at", [0, 1, 10, 11, -2])
def test_a_split_must_leave_both_articles_a_paragraph(
    session: Session, sample_bulletin: bytes, at: int
) -> None:
    article = import_bulletin(session, sample_bulletin).bulletin_import.articles[1]
    with pytest.raises(InvalidInput, match="between 2 and 9"):
        split_article(session, article.id, at=at)


def test_articles_in_a_sent_issue_cannot_be_changed(
    session: Session, sample_bulletin: bytes
) -> None:
    record = import_bulletin(session, sample_bulletin).bulletin_import
    issue = create_issue(session, subject="x")
    issue.transition(IssueStatus.RENDERED)
    issue.transition(IssueStatus.SENT)
    first, second = record.articles[0], record.articles[1]
    before = list(first.paragraphs)

    for change in (
        lambda: merge_articles(session, first.id, second.id),
        lambda: split_article(session, second.id, at=2),
        lambda: set_article_image(session, first.id, "https://example.com/a.jpg", "A photo"),
    ):
        with pytest.raises(InvalidTransition, match="sent"):
            change()
    assert first.paragraphs == before
    assert first.image_url is None


def test_unknown_or_identical_articles_are_refused(
    session: Session, sample_bulletin: bytes
) -> None:
    article = import_bulletin(session, sample_bulletin).bulletin_import.articles[0]
    with pytest.raises(NotFound):
        merge_articles(session, article.id, 999_999)
    with pytest.raises(InvalidInput, match="itself"):
        merge_articles(session, article.id, article.id)
    with pytest.raises(NotFound):
        split_article(session, 999_999, at=2)


def test_an_image_needs_https_and_alt_text_and_can_be_removed(
    session: Session, sample_bulletin: bytes
) -> None:
    article = import_bulletin(session, sample_bulletin).bulletin_import.articles[0]
    issue = create_issue(session, subject="x")
    issue.transition(IssueStatus.RENDERED)

    set_article_image(session, article.id, "https://cdn.example.com/sco.jpg", " The summit hall ")

    assert (article.image_url, article.image_alt) == (
        "https://cdn.example.com/sco.jpg",
        "The summit hall",
    )
    assert issue.status == IssueStatus.DRAFT
    set_article_image(session, article.id, None, None)
    assert (article.image_url, article.image_alt) == (None, None)


@pytest.mark.parametrize(
    ("url", "alt", "message"),
    [
        ("http://cdn.example.com/a.jpg", "A photo", "https"),
        ("//cdn.example.com/a.jpg", "A photo", "https"),
        ("https://user:pw@cdn.example.com/a.jpg", "A photo", "password"),
        ("https://t.example.com/p.gif?u=%%NL.email%%", "A photo", "every reader"),
        ("https://cdn.example.com/a b.jpg", "A photo", "space"),
        ("https://cdn.example.com/a.jpg", "  ", "alt"),
        ("https://cdn.example.com/" + "a" * 2100, "A photo", "2048"),
    ],
)
def test_an_image_that_could_track_or_hide_is_refused(
    session: Session, sample_bulletin: bytes, url: str, alt: str, message: str
) -> None:
    article = import_bulletin(session, sample_bulletin).bulletin_import.articles[0]
    with pytest.raises(InvalidInput, match=message):
        set_article_image(session, article.id, url, alt)
    assert article.image_url is None


def test_no_orphan_entries_are_left_behind(session: Session, sample_bulletin: bytes) -> None:
    record = import_bulletin(session, sample_bulletin).bulletin_import
    merge_articles(session, record.articles[0].id, record.articles[1].id)
    session.expire_all()
    positions = session.execute(
        sa.text(
            "SELECT position FROM bulletin_import_articles WHERE import_id = :i ORDER BY position"
        ),
        {"i": record.id},
    ).scalars()
    assert list(positions) == [0, 1, 2, 3, 4]
