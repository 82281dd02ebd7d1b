"""The stored rendering of an issue: HTML and text with per-recipient markers, made once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.db import Base, utcnow


class IssueRendering(Base):
    __tablename__ = "issue_renderings"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html_bytes: Mapped[int]
    # The web version (full mode, no markers), rendered with the email so that a public page
    # view reads a row instead of running Jinja, MJML and the inliner. None: rendered before
    # web versions were stored; ``service.web_version`` renders it then.
    web_html: Mapped[str | None] = mapped_column(Text)
    rendered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
