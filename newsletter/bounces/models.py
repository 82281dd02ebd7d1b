"""Tables of the bounce stage: raw inbound messages and the events read from them.

``bounce_messages`` keeps every message to the bounce domain exactly as it arrived, committed
before the source is acknowledged (SMTP 250, IMAP move, POP3 DELE), so nothing is lost if the
parser or the policy fails later. ``bounce_events`` holds one row per ``BounceEvent`` with the
action the policy took; its unique keys make reprocessing a no-op. The status changes this
stage makes are audited by the subscriber stage (``subscribers.audit``), like every other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.bounces.event import BounceKind, Evidence

# Where a bounce came from lives with the event's other value types (pure); re-exported here,
# where the table code has always found it.
from newsletter.bounces.event import BounceSource as BounceSource
from newsletter.bounces.policy import BounceAction
from newsletter.db import Base, intpk, utcnow


class BounceMessage(Base):
    """One inbound message as received; ``processed_at`` is set once its events are applied."""

    __tablename__ = "bounce_messages"

    id: Mapped[intpk]
    # SHA-256 of the envelope recipient and the raw bytes: a message the MTA retried, or one two
    # pollers both fetched, is stored (and processed) once.
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Kept in the row, not on disk: the receiver refuses anything over 10 MB (552) and real
    # bounces are a few KB, so a file store would only add a second place to lose data.
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    source: Mapped[BounceSource]
    envelope_rcpt: Mapped[str | None] = mapped_column(String(320))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    # e.g. "hard 1, counted 0" or "unparseable": for people browsing the table.
    outcome: Mapped[str | None] = mapped_column(Text)


class BounceEventRecord(Base):
    """One ``BounceEvent`` as stored, with whom it was matched to and what was done."""

    __tablename__ = "bounce_events"
    __table_args__ = (
        # The n-th event parsed from a message: parsing is deterministic, so reprocessing the
        # message finds its rows already there. (Recipient would be NULL for unparseable ones.)
        UniqueConstraint("bounce_message_id", "position"),
        Index("ix_bounce_events_subscriber_created", "subscriber_id", "created_at"),
        # `bounces review`: the unverified events nobody has looked at yet.
        Index("ix_bounce_events_review", "evidence", "reviewed_at"),
    )

    id: Mapped[intpk]
    bounce_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("bounce_messages.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(default=0)
    # Events without a stored message (webhooks, synchronous 5xx) are unique on this instead:
    # "<source>:<provider event id>" or "sync:<delivery id>".
    source_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    source: Mapped[BounceSource]
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[BounceKind]
    recipient: Mapped[str | None] = mapped_column(String(320))
    domain: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16))
    diagnostic: Mapped[str | None] = mapped_column(Text)
    classifier: Mapped[str] = mapped_column(String(32))
    # Which evidence tied the event to the subscriber; ``none``: stored only, never applied
    # automatically, and subscriber/delivery/campaign stay empty (``recipient`` says whom the
    # report names).
    evidence: Mapped[Evidence] = mapped_column(default=Evidence.NONE, server_default=text("'none'"))
    action: Mapped[BounceAction]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Set by `newsletter bounces apply EVENT_ID` when a person acted on an unverified event.
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[dt.datetime | None]
