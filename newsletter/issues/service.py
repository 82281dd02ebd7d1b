"""Use cases of the issue stage: an editor assembles an issue from chosen articles and rates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content.models import Article
from newsletter.content.service import find_snapshot, get_articles, latest_import
from newsletter.content.validation import check_field
from newsletter.errors import InvalidInput, NotFound
from newsletter.issues.models import Issue, IssueArticle

PREHEADER_MAX_CHARS = 110
LATEST = "latest"


def create_issue(
    session: Session,
    *,
    subject: str,
    article_ids: list[int] | None = None,
    rates: dt.date | str | None = LATEST,
    preheader: str | None = None,
    date: dt.date | None = None,
) -> Issue:
    """Create a draft issue.

    Without ``article_ids`` the issue takes the articles of the latest import, in their order.
    ``rates`` is a snapshot date, ``"latest"``, or None for an issue without a rate table.
    """
    subject = " ".join(subject.split())
    if not subject:
        raise InvalidInput("the subject is empty")
    check_field(subject, "subject")
    if preheader is not None:
        check_field(preheader, "preheader")
    if article_ids is None:
        articles = latest_import(session).articles
    else:
        if len(set(article_ids)) != len(article_ids):
            raise InvalidInput("an article is chosen twice")
        articles = get_articles(session, article_ids)
    if not articles:
        raise InvalidInput("an issue needs at least one article")

    snapshot = None
    if rates is not None:
        if isinstance(rates, str) and rates != LATEST:
            raise InvalidInput(f"rates must be a date (YYYY-MM-DD) or {LATEST!r}, not {rates!r}")
        snapshot = find_snapshot(session, None if isinstance(rates, str) else rates)

    issue = Issue(
        subject=subject,
        preheader=" ".join((preheader or default_preheader(articles)).split()),
        date=date or max(a.source_date for a in articles),
        snapshot=snapshot,
        entries=[IssueArticle(position=i, article=a) for i, a in enumerate(articles)],
    )
    session.add(issue)
    session.flush()
    return issue


def get_issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"no issue with id {issue_id}")
    return issue


def list_issues(session: Session) -> list[Issue]:
    return list(session.scalars(select(Issue).order_by(Issue.id)))


def default_preheader(articles: list[Article]) -> str:
    """The inbox preview line: the first article's opening words, cut at a word boundary."""
    text = articles[0].paragraphs[0] if articles[0].paragraphs else articles[0].title
    if len(text) <= PREHEADER_MAX_CHARS:
        return text
    return text[: PREHEADER_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
