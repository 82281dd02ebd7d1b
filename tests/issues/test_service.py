"""Assembling an issue from chosen articles and a rate snapshot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from newsletter.content.service import import_bulletin
from newsletter.errors import InvalidInput, InvalidTransition, NotFound
from newsletter.issues.models import IssueStatus
from newsletter.issues.modes import IssueMode
from newsletter.issues.service import create_issue, set_mode


def test_without_a_choice_the_issue_takes_the_latest_import_in_order(
    session: Session, sample_bulletin: bytes
) -> None:
    imported = import_bulletin(session, sample_bulletin).bulletin_import

    issue = create_issue(session, subject="  Central Asia   Weekly ")

    assert issue.subject == "Central Asia Weekly"
    assert [a.id for a in issue.articles] == [a.id for a in imported.articles]
    assert issue.date == dt.date(2025, 12, 11)
    assert issue.snapshot is not None
    assert issue.snapshot.date == dt.date(2025, 12, 11)
    assert issue.status == IssueStatus.DRAFT
    assert 0 < len(issue.preheader) <= 110


def test_the_editor_chooses_and_orders_the_articles(
    session: Session, sample_bulletin: bytes
) -> None:
    articles = import_bulletin(session, sample_bulletin).bulletin_import.articles
    chosen = [articles[3].id, articles[0].id, articles[5].id]

    issue = create_issue(session, subject="Three stories", article_ids=chosen, rates=None)

    assert [a.id for a in issue.articles] == chosen
    assert issue.snapshot is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"subject": "   "}, InvalidInput),
        ({"subject": "x", "article_ids": [999_999]}, NotFound),
        ({"subject": "x", "article_ids": []}, InvalidInput),
        ({"subject": "x", "rates": dt.date(1999, 1, 1)}, NotFound),
        ({"subject": "x", "rates": "yesterday"}, InvalidInput),
    ],
)
def test_bad_choices_are_refused(
    session: Session, sample_bulletin: bytes, kwargs: dict[str, object], error: type[Exception]
) -> None:
    import_bulletin(session, sample_bulletin)
    with pytest.raises(error):
        create_issue(session, **kwargs)  # type: ignore[arg-type]


def test_an_article_chosen_twice_is_refused(session: Session, sample_bulletin: bytes) -> None:
    articles = import_bulletin(session, sample_bulletin).bulletin_import.articles
    with pytest.raises(InvalidInput, match="twice"):
        create_issue(session, subject="x", article_ids=[articles[0].id, articles[0].id])


def test_a_sent_issue_cannot_go_back_to_draft(session: Session, sample_bulletin: bytes) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="x")
    issue.transition(IssueStatus.RENDERED)
    issue.transition(IssueStatus.SENT)
    with pytest.raises(InvalidTransition):
        issue.transition(IssueStatus.DRAFT)


RUSSIAN = Path(__file__).parents[1] / "content" / "bulletins" / "bulletin-ru-2025-12-18.txt"


def test_an_issue_takes_the_language_of_its_articles_unless_given(
    session: Session, sample_bulletin: bytes
) -> None:
    english = import_bulletin(session, sample_bulletin).bulletin_import.articles
    russian = import_bulletin(session, RUSSIAN.read_bytes()).bulletin_import.articles

    assert create_issue(session, subject="Выпуск").lang == "ru"  # the latest import
    mostly_english = [a.id for a in english[:2]] + [russian[0].id]
    assert create_issue(session, subject="x", article_ids=mostly_english).lang == "en"
    assert create_issue(session, subject="x", lang="kk_kz").lang == "kk-KZ"
    with pytest.raises(InvalidInput, match="language"):
        create_issue(session, subject="x", lang="Russian")


def test_issues_are_numbered_in_turn_unless_the_editor_numbers_them(
    session: Session, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    first = create_issue(session, subject="x")
    second = create_issue(session, subject="x")
    chosen = create_issue(session, subject="x", number=40)
    after = create_issue(session, subject="x")

    assert second.number == (first.number or 0) + 1
    assert (chosen.number, after.number) == (40, 41)
    with pytest.raises(InvalidInput, match="number"):
        create_issue(session, subject="x", number=0)


def test_an_issue_is_full_unless_made_in_excerpt_mode(
    session: Session, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    assert create_issue(session, subject="x").mode == IssueMode.FULL
    excerpt = create_issue(session, subject="x", mode=IssueMode.EXCERPT, excerpt_words=40)
    assert (excerpt.mode, excerpt.excerpt_words) == (IssueMode.EXCERPT, 40)
    with pytest.raises(InvalidInput, match="words"):
        create_issue(session, subject="x", mode=IssueMode.EXCERPT, excerpt_words=3)


def test_changing_the_mode_sends_a_rendered_issue_back_to_draft(
    session: Session, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="x")
    issue.transition(IssueStatus.RENDERED)

    changed = set_mode(session, issue.id, IssueMode.EXCERPT, excerpt_words=None)

    assert changed.mode == IssueMode.EXCERPT
    assert changed.status == IssueStatus.DRAFT
    issue.transition(IssueStatus.RENDERED)
    issue.transition(IssueStatus.SENT)
    with pytest.raises(InvalidTransition):
        set_mode(session, issue.id, IssueMode.FULL)
