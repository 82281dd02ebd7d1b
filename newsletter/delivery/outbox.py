"""The transactional outbox: one row per mail that a person's own action asks for.

A row is written in the transaction of the action itself (a sign-up), so a relay that is down
can delay the mail but never lose it. A job sends it afterwards (``transactional.send_queued``)
and a sweep (``due_ids``, run by ``tick`` and by the web app in embedded mode) retries it on
NEWSLETTER_RETRY_SCHEDULE. A row is claimed under a lease, like a campaign's ledger row, so any
number of web processes and workers may sweep at once and only one of them sends each message;
a sender that dies leaves a row whose lease runs out and that the next sweep takes over (the
person may then get the mail twice, which for a confirmation is harmless).

The table lives here, not in ``models.py``, because it belongs to transactional mail alone.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ColumnElement, ForeignKey, Index, Text, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from newsletter.db import Base, affected_rows, intpk, utcnow
from newsletter.errors import InvalidTransition

DUE_BATCH = 100  # ids handed out per sweep


class OutboxKind(enum.StrEnum):
    CONFIRMATION = "confirmation"  # the double opt-in link (LAW-05)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its first try, or for a retry at next_attempt_at
    SENDING = "sending"  # claimed by a sender until lease_expires_at
    SENT = "sent"  # the relay accepted it
    FAILED = "failed"  # refused for good (5xx), or every retry used up
    CANCELLED = "cancelled"  # no longer wanted (confirmed, unsubscribed or erased meanwhile)


OUTBOX_TRANSITIONS: dict[OutboxStatus, frozenset[OutboxStatus]] = {
    OutboxStatus.PENDING: frozenset({OutboxStatus.SENDING, OutboxStatus.CANCELLED}),
    OutboxStatus.SENDING: frozenset(
        {
            OutboxStatus.SENT,
            OutboxStatus.PENDING,
            OutboxStatus.FAILED,
            OutboxStatus.CANCELLED,
            OutboxStatus.SENDING,  # a lease that ran out is taken over by another sender
        }
    ),
    OutboxStatus.SENT: frozenset(),
    OutboxStatus.FAILED: frozenset(),
    OutboxStatus.CANCELLED: frozenset(),
}


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    kind: Mapped[OutboxKind]
    # CASCADE: erasing a subscriber (GDPR) takes their queued mail with them.
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    status: Mapped[OutboxStatus] = mapped_column(default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime]
    lease_expires_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]

    def transition(self, new: OutboxStatus) -> None:
        if new not in OUTBOX_TRANSITIONS[self.status]:
            raise InvalidTransition(f"outbox message {self.id} is {self.status}; not {new}")
        self.status = new


def queue(
    session: Session, kind: OutboxKind, subscriber_id: int, list_id: int, now: dt.datetime
) -> int:
    """Queue one message (flushed, not committed); one waiting message per person and list."""
    waiting = session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.kind == kind,
            OutboxMessage.subscriber_id == subscriber_id,
            OutboxMessage.list_id == list_id,
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        )
    )
    if waiting is not None:
        return waiting
    message = OutboxMessage(
        kind=kind,
        subscriber_id=subscriber_id,
        list_id=list_id,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message.id


def due_ids(session: Session, now: dt.datetime, limit: int = DUE_BATCH) -> list[int]:
    """Messages a sweep should try now: pending and due, or abandoned by a dead sender."""
    return list(
        session.scalars(
            select(OutboxMessage.id)
            .where(_claimable(now))
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
    )


def pending_count(session: Session) -> int:
    """Messages not yet sent nor given up (queue depth for the metrics)."""
    return (
        session.scalar(
            select(func.count()).where(
                OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
            )
        )
        or 0
    )


def claim(
    session: Session, message_id: int, now: dt.datetime, lease_seconds: int
) -> OutboxMessage | None:
    """Take the message for sending under a lease, or None if it is not ours to send now.

    One UPDATE decides, so two sweepers that race for the same row cannot both win.
    """
    claimed = affected_rows(
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, _claimable(now))
            .values(
                status=OutboxStatus.SENDING,
                attempts=OutboxMessage.attempts + 1,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
            )
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:
        return None
    return session.get(OutboxMessage, message_id, populate_existing=True)


def record_sent(session: Session, message: OutboxMessage, now: dt.datetime) -> None:
    message.transition(OutboxStatus.SENT)
    message.sent_at = now
    message.lease_expires_at = None
    message.last_error = None


def record_failure(
    session: Session,
    message: OutboxMessage,
    error: str,
    *,
    permanent: bool,
    schedule: tuple[int, ...],
    now: dt.datetime,
) -> None:
    """A refusal: retry after the next step of ``schedule``, or give up (5xx, or retries spent)."""
    message.last_error = error[:2000]
    message.lease_expires_at = None
    if permanent or message.attempts > len(schedule):
        message.transition(OutboxStatus.FAILED)
        return
    message.transition(OutboxStatus.PENDING)
    message.next_attempt_at = now + dt.timedelta(seconds=schedule[message.attempts - 1])


def cancel(session: Session, message: OutboxMessage, reason: str) -> None:
    message.transition(OutboxStatus.CANCELLED)
    message.last_error = reason
    message.lease_expires_at = None


def forget_subscriber(session: Session, subscriber_id: int) -> None:
    """Erasure: the queued mail of a subscriber goes with them (the foreign key cascades too,
    but SQLite enforces it only on connections that turned foreign keys on)."""
    session.execute(delete(OutboxMessage).where(OutboxMessage.subscriber_id == subscriber_id))


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        (OutboxMessage.status == OutboxStatus.PENDING) & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.status == OutboxStatus.SENDING) & (OutboxMessage.lease_expires_at < now),
    )
