"""Use cases of the issue stage: an editor assembles an issue from chosen articles and rates."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.content.language import normalise_language_tag
from newsletter.content.models import Article
from newsletter.content.service import find_snapshot, get_articles, latest_import
from newsletter.content.validation import check_field
from newsletter.db import get_or_raise
from newsletter.errors import InvalidInput
from newsletter.issues.models import Issue, IssueArticle
from newsletter.issues.modes import IssueMode

PREHEADER_MAX_CHARS = 110
LATEST = "latest"
# An excerpt shorter than a sentence or two tells the reader nothing; a longer one than this is
# the full article in all but name.
MIN_EXCERPT_WORDS = 10
MAX_EXCERPT_WORDS = 500


def create_issue(
    session: Session,
    *,
    subject: str,
    article_ids: list[int] | None = None,
    rates: dt.date | str | None = LATEST,
    preheader: str | None = None,
    date: dt.date | None = None,
    lang: str | None = None,
    number: int | None = None,
    mode: IssueMode = IssueMode.FULL,
    excerpt_words: int | None = None,
) -> Issue:
    """Create a draft issue.

    Without ``article_ids`` the issue takes the articles of the latest import, in their order.
    ``rates`` is a snapshot date, ``"latest"``, or None for an issue without a rate table.
    Without ``lang`` the issue is in the language most of its articles are written in; without
    ``number`` it is numbered after the highest number so far.
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

    if number is not None and number < 1:
        raise InvalidInput(f"the issue number must be 1 or more, not {number}")
    issue = Issue(
        subject=subject,
        preheader=" ".join((preheader or default_preheader(articles)).split()),
        date=date or max(a.source_date for a in articles),
        lang=normalise_language_tag(lang) if lang is not None else articles_language(articles),
        number=number if number is not None else _next_number(session),
        mode=mode,
        excerpt_words=_excerpt_words(excerpt_words),
        snapshot=snapshot,
        entries=[IssueArticle(position=i, article=a) for i, a in enumerate(articles)],
    )
    session.add(issue)
    session.flush()
    return issue


def set_mode(
    session: Session, issue_id: int, mode: IssueMode, *, excerpt_words: int | None = None
) -> Issue:
    """Switch an unsent issue between full and excerpt mode; it must be rendered again."""
    issue = get_issue(session, issue_id)
    words = _excerpt_words(excerpt_words)
    issue.mark_changed()
    issue.mode, issue.excerpt_words = mode, words
    session.flush()
    return issue


def articles_language(articles: list[Article]) -> str:
    """The language most of ``articles`` are in; on a tie, the first article's."""
    counts = Counter(a.lang for a in articles)
    # A Counter iterates in first-seen order and max() keeps the first of equals.
    return max(counts, key=counts.__getitem__)


def _next_number(session: Session) -> int:
    return (session.scalar(select(func.max(Issue.number))) or 0) + 1


def _excerpt_words(words: int | None) -> int | None:
    if words is not None and not MIN_EXCERPT_WORDS <= words <= MAX_EXCERPT_WORDS:
        raise InvalidInput(
            f"an excerpt must be {MIN_EXCERPT_WORDS}–{MAX_EXCERPT_WORDS} words, not {words}"
        )
    return words


def get_issue(session: Session, issue_id: int) -> Issue:
    return get_or_raise(session, Issue, issue_id, f"no issue with id {issue_id}")


def list_issues(session: Session) -> list[Issue]:
    return list(session.scalars(select(Issue).order_by(Issue.id)))


def default_preheader(articles: list[Article]) -> str:
    """The inbox preview line: the first article's opening words, cut at a word boundary."""
    text = articles[0].paragraphs[0] if articles[0].paragraphs else articles[0].title
    if len(text) <= PREHEADER_MAX_CHARS:
        return text
    return text[: PREHEADER_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
