"""Tables of the issue stage: an editor's issue, its ordered articles and the rates it shows."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.content.models import Article, RateSnapshot
from newsletter.db import Base, intpk, utcnow
from newsletter.errors import InvalidTransition
from newsletter.issues.modes import IssueMode


class IssueStatus(enum.StrEnum):
    DRAFT = "draft"  # being assembled; not rendered since the last change
    RENDERED = "rendered"  # rendered; the stored HTML and text match the selection
    SENT = "sent"  # a campaign has gone out; the issue is frozen


# Which status may follow which; everything else raises InvalidTransition.
ISSUE_TRANSITIONS: dict[IssueStatus, frozenset[IssueStatus]] = {
    IssueStatus.DRAFT: frozenset({IssueStatus.RENDERED}),
    IssueStatus.RENDERED: frozenset({IssueStatus.RENDERED, IssueStatus.DRAFT, IssueStatus.SENT}),
    IssueStatus.SENT: frozenset({IssueStatus.SENT}),
}


class Issue(Base):
    __tablename__ = "issues"

    id: Mapped[intpk]
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text)
    date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[IssueStatus] = mapped_column(default=IssueStatus.DRAFT)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("rate_snapshots.id"))
    lang: Mapped[str] = mapped_column(String(16), default="en")
    # The masthead's "Issue 12"; the next free number unless the editor gives one.
    number: Mapped[int | None]
    mode: Mapped[IssueMode] = mapped_column(default=IssueMode.FULL, server_default="full")
    # In excerpt mode, cut each first paragraph at this many words (None: the whole paragraph).
    excerpt_words: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    snapshot: Mapped[RateSnapshot | None] = relationship(lazy="selectin")
    entries: Mapped[list[IssueArticle]] = relationship(
        order_by="IssueArticle.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def articles(self) -> list[Article]:
        return [entry.article for entry in self.entries]

    def transition(self, new: IssueStatus) -> None:
        if new not in ISSUE_TRANSITIONS[self.status]:
            raise InvalidTransition(f"issue {self.id} is {self.status}; it cannot become {new}")
        self.status = new

    def mark_changed(self) -> None:
        """Before its content or form changes: a sent issue refuses, a rendered one is a draft
        again, because its stored rendering no longer matches."""
        if self.status == IssueStatus.SENT:
            raise InvalidTransition(f"issue {self.id} has been sent; it can no longer change")
        if self.status == IssueStatus.RENDERED:
            self.transition(IssueStatus.DRAFT)


class IssueArticle(Base):
    __tablename__ = "issue_articles"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    article: Mapped[Article] = relationship(lazy="selectin")
