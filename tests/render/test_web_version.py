"""The web version of a sent issue is public, stored with the rendering, and holds nobody's data."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.service import import_bulletin
from newsletter.errors import NotFound
from newsletter.issues.models import IssueStatus
from newsletter.issues.service import create_issue
from newsletter.render.models import IssueRendering
from newsletter.render.service import render_issue
from newsletter.render.web_version import published_issues, published_web_version


def test_only_a_sent_issue_has_a_web_version(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly")
    render_issue(session, settings, issue.id)

    with pytest.raises(NotFound):
        published_web_version(session, settings, issue.id)
    assert published_issues(session) == []

    issue.transition(IssueStatus.SENT)
    html = published_web_version(session, settings, issue.id)

    assert "%%NL." not in html
    assert "/u/" not in html
    assert f"{settings.base_url}/archive" in html
    assert f"{settings.base_url}/issues/{issue.id}#article-1" in html
    rendering = session.get(IssueRendering, issue.id)
    assert rendering is not None
    assert html == rendering.web_html  # read, not rendered again
    assert [entry.issue_id for entry in published_issues(session)] == [issue.id]
