"""The archive lists sent issues only, newest first; the web version shows nobody's data."""

from __future__ import annotations

from fastapi.testclient import TestClient

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.issues.models import Issue, IssueStatus
from newsletter.render.models import IssueRendering
from tests.delivery.seed import rendered_issue


def publish(settings: Settings, issue_id: int) -> None:
    with session_scope(settings) as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        issue.transition(IssueStatus.SENT)


def test_the_archive_lists_only_sent_issues(client: TestClient, web_settings: Settings) -> None:
    sent = rendered_issue(web_settings)
    publish(web_settings, sent)
    draft = rendered_issue(web_settings)

    archive = client.get("/archive")

    assert archive.status_code == 200
    assert f"/issues/{sent}" in archive.text
    assert f"/issues/{draft}" not in archive.text
    assert client.get(f"/issues/{draft}").status_code == 404
    assert client.get("/issues/999999").status_code == 404


def test_the_web_version_holds_no_personal_marker_and_no_token(
    client: TestClient, web_settings: Settings
) -> None:
    issue_id = rendered_issue(web_settings)
    publish(web_settings, issue_id)

    page = client.get(f"/issues/{issue_id}")

    assert page.status_code == 200
    assert "%%NL." not in page.text
    assert "/u/" not in page.text
    assert f"{web_settings.base_url}/archive" in page.text
    with session_scope(web_settings) as session:
        rendering = session.get(IssueRendering, issue_id)
        assert rendering is not None
        assert "%%NL.unsubscribe_url%%" in rendering.html
    policy = page.headers["content-security-policy"]
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
