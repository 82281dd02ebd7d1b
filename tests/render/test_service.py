"""Rendering a stored issue and its pre-send check."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.models import Article
from newsletter.content.service import import_bulletin
from newsletter.issues.models import IssueStatus
from newsletter.issues.service import create_issue
from newsletter.render import service
from newsletter.render.checks import insecure_links


def test_rendering_is_stored_once_and_marks_the_issue_rendered(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly")

    rendering = service.render_issue(session, settings, issue.id)

    assert issue.status == IssueStatus.RENDERED
    assert rendering.html_bytes == len(rendering.html.encode())
    assert "%%NL.unsubscribe_url%%" in rendering.html
    assert service.rendering_for(session, settings, issue.id) is rendering


def test_the_sample_issue_passes_its_check(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly")

    assert service.check_issue(session, settings, issue.id) == []


def test_the_check_lists_every_problem(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly", date=dt.date(2026, 1, 30))
    empty = Article(
        title="An Empty Piece",
        paragraphs=[" "],
        source_date=dt.date(2026, 1, 30),
        fingerprint="0" * 64,
    )
    session.add(empty)
    session.flush()
    issue.entries[0].article = empty
    insecure = dataclasses.replace(
        settings, base_url="http://news.example.org", postal_address=None
    )

    problems = service.check_issue(session, insecure, issue.id)

    assert any("rates are from 2025-12-11" in p for p in problems)
    assert any("'An Empty Piece' is empty" in p for p in problems)
    assert any("base_url must be an absolute https URL" in p for p in problems)
    assert any("NEWSLETTER_POSTAL_ADDRESS" in p for p in problems)


def test_a_link_that_is_not_https_fails_the_check() -> None:
    html = (
        '<a href="https://ok.example/">a</a><a href="http://x.example/">b</a><img src="/logo.png">'
    )
    assert insecure_links(html) == ["http://x.example/", "/logo.png"]


def test_an_issue_without_rates_fails_the_check(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly", rates=None)

    assert service.check_issue(session, settings, issue.id) == ["the issue has no rate snapshot"]
