"""Assembling an issue from chosen articles and a rate snapshot."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from newsletter.content.service import import_bulletin
from newsletter.errors import InvalidInput, InvalidTransition, NotFound
from newsletter.issues.models import IssueStatus
from newsletter.issues.service import create_issue


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
