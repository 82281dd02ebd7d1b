"""Tables of the content stage: imported bulletins, their articles and rate snapshots."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.db import Base, ExactDecimal, intpk, utcnow


class Article(Base):
    """One article as the desk wrote it; identical text imported twice is one row."""

    __tablename__ = "articles"

    id: Mapped[intpk]
    title: Mapped[str] = mapped_column(Text)
    paragraphs: Mapped[list[str]] = mapped_column(JSON)
    source_date: Mapped[dt.date] = mapped_column(Date)
    url: Mapped[str | None] = mapped_column(String(2048))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    image_alt: Mapped[str | None] = mapped_column(Text)
    # BCP 47 tag of the language it is written in: detected at import or given (--lang).
    lang: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    # sha256 of the title and paragraphs: what makes re-importing the same file a no-op.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RateSnapshot(Base):
    """The rate table of one bulletin; a corrected export for the same date is a new snapshot."""

    __tablename__ = "rate_snapshots"

    id: Mapped[intpk]
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rates: Mapped[list[Rate]] = relationship(
        order_by="Rate.position", cascade="all, delete-orphan", lazy="selectin"
    )


class Rate(Base):
    __tablename__ = "rates"
    __table_args__ = (UniqueConstraint("snapshot_id", "pair"),)

    id: Mapped[intpk]
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("rate_snapshots.id", ondelete="CASCADE"))
    position: Mapped[int]
    pair: Mapped[str] = mapped_column(String(7))  # "KGS/USD"
    rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    change_pct: Mapped[Decimal] = mapped_column(ExactDecimal())


class BulletinImport(Base):
    """One imported export file: its date, its articles in order, its rate snapshot."""

    __tablename__ = "bulletin_imports"

    id: Mapped[intpk]
    date: Mapped[dt.date] = mapped_column(Date)
    lang: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    # sha256 of the parsed bulletin, so the same file imported twice is recognised.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("rate_snapshots.id"))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    snapshot: Mapped[RateSnapshot | None] = relationship(lazy="selectin")
    entries: Mapped[list[BulletinImportArticle]] = relationship(
        order_by="BulletinImportArticle.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def articles(self) -> list[Article]:
        return [entry.article for entry in self.entries]


class BulletinImportArticle(Base):
    __tablename__ = "bulletin_import_articles"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("bulletin_imports.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    article: Mapped[Article] = relationship(lazy="selectin")
