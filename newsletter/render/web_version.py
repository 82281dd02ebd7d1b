"""The public face of sent issues: the archive list and each issue's web version.

The web version is what "view in browser" opens. It is the stored rendering that subscribers
got, with neutral values in place of every per-recipient marker: no name, no address, and an
unsubscribe link to a page that explains where the real one is, never a reader's token. Only
an issue that went out (a campaign started: the issue is ``sent`` and frozen) is public; a
draft stays private even if someone guesses its id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.errors import NotFound
from newsletter.issues.models import Issue, IssueStatus
from newsletter.render.models import IssueRendering
from newsletter.render.personalise import PersonalTemplate
from newsletter.render.view import format_date


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    issue_id: int
    subject: str
    date: dt.date

    @property
    def date_text(self) -> str:
        return format_date(self.date)


def published_issues(session: Session) -> list[ArchiveEntry]:
    """Every sent issue, newest first."""
    rows = session.execute(
        sa.select(Issue.id, Issue.subject, Issue.date)
        .where(Issue.status == IssueStatus.SENT)
        .order_by(Issue.date.desc(), Issue.id.desc())
    )
    return [ArchiveEntry(issue_id, subject, date) for issue_id, subject, date in rows]


def neutral_values(settings: Settings, issue_id: int) -> dict[str, str]:
    """The per-recipient fields of the web version: nobody's."""
    return {
        "name": "",
        "email": "your address",
        "unsubscribe_url": f"{settings.base_url}/unsubscribe",
        "view_url": f"{settings.base_url}/issues/{issue_id}",
    }


def web_version(session: Session, settings: Settings, issue_id: int) -> str:
    """The HTML of a sent issue as anyone may see it; ``NotFound`` for any other issue."""
    issue = session.get(Issue, issue_id)
    rendering = session.get(IssueRendering, issue_id)
    if issue is None or issue.status is not IssueStatus.SENT or rendering is None:
        raise NotFound(f"no published issue {issue_id}")
    return PersonalTemplate.split(rendering.html, "html").fill(neutral_values(settings, issue_id))
