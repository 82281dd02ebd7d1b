"""The public face of sent issues: the archive list and each issue's web version.

The web version is what "view in browser" opens: the issue in full mode with no reader in it
(no name, no address, no unsubscribe token; see ``service.web_version``). Only an issue that
went out (a campaign started: the issue is ``sent`` and frozen) is public; a draft stays
private even if someone guesses its id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.errors import NotFound
from newsletter.issues.models import Issue, IssueStatus
from newsletter.render.service import web_version
from newsletter.render.view import format_date


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    issue_id: int
    subject: str
    date: dt.date
    lang: str

    @property
    def date_text(self) -> str:
        return format_date(self.date, self.lang)


def published_issues(session: Session) -> list[ArchiveEntry]:
    """Every sent issue, newest first."""
    rows = session.execute(
        sa.select(Issue.id, Issue.subject, Issue.date, Issue.lang)
        .where(Issue.status == IssueStatus.SENT)
        .order_by(Issue.date.desc(), Issue.id.desc())
    )
    return [ArchiveEntry(*row) for row in rows]


def published_web_version(session: Session, settings: Settings, issue_id: int) -> str:
    """The HTML of a sent issue as anyone may see it; ``NotFound`` for any other issue."""
    issue = session.get(Issue, issue_id)
    if issue is None or issue.status is not IssueStatus.SENT:
        raise NotFound(f"no published issue {issue_id}")
    return web_version(session, settings, issue_id)
