"""Unverified events: the reports no evidence ties to a message we sent, for a person to judge.

``processing`` stores such an event with ``Evidence.NONE`` and changes nobody. An administrator
lists them (``newsletter bounces review``), looks at the report, and may act on one
(``newsletter bounces apply EVENT_ID``): the bounce policy then runs for the subscriber whose
address the report names, exactly as it would have with evidence, and the audit trail and the
event row say who decided.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.bounces.event import BounceEvent, BounceSource, Evidence
from newsletter.bounces.models import BounceEventRecord
from newsletter.bounces.policy import ACTIONABLE_KINDS, decide
from newsletter.bounces.processing import ProcessedEvent, carry_out, history_for
from newsletter.bounces.report import awaiting_review
from newsletter.config import Settings
from newsletter.db import get_or_raise
from newsletter.errors import InvalidInput, NotFound
from newsletter.subscribers.models import Subscriber


@dataclass(frozen=True, slots=True)
class Unverified:
    """One event waiting for a person (one line of ``bounces review --json``)."""

    event_id: int
    kind: str
    email: str | None  # the address the report names
    subscriber_status: str | None  # of the subscriber with that address; None: no such subscriber
    status: str | None
    diagnostic: str | None
    source: BounceSource
    bounce_message_id: int | None  # the stored raw message, to look at
    received_at: dt.datetime

    def as_document(self) -> dict[str, Any]:
        return {
            "event": self.event_id,
            "kind": self.kind,
            "email": self.email,
            "subscriber_status": self.subscriber_status,
            "status": self.status,
            "diagnostic": self.diagnostic,
            "source": self.source.value,
            "message": self.bounce_message_id,
            "received_at": self.received_at.isoformat(),
        }


def unverified_events(session: Session, limit: int = 500) -> list[Unverified]:
    """The oldest events awaiting review first."""
    rows = session.execute(
        select(BounceEventRecord, Subscriber.status)
        .outerjoin(Subscriber, Subscriber.email == BounceEventRecord.recipient)
        .where(awaiting_review())
        .order_by(BounceEventRecord.id)
        .limit(limit)
    )
    return [
        Unverified(
            event_id=record.id,
            kind=record.kind.value,
            email=record.recipient,
            subscriber_status=status.value if status is not None else None,
            status=record.status,
            diagnostic=record.diagnostic,
            source=record.source,
            bounce_message_id=record.bounce_message_id,
            received_at=record.created_at,
        )
        for record, status in rows
    ]


def apply_unverified(
    session: Session, settings: Settings, event_id: int, *, by: str, now: dt.datetime
) -> ProcessedEvent:
    """A person looked at an unverified event and applies it to the subscriber it names."""
    record = get_or_raise(
        session,
        BounceEventRecord,
        event_id,
        f"no bounce event with id {event_id}",
        with_for_update=True,
    )
    if record.evidence is not Evidence.NONE:
        raise InvalidInput(
            f"event {event_id} had evidence ({record.evidence.value}) and was applied already"
        )
    if record.reviewed_at is not None:
        raise InvalidInput(f"event {event_id} was applied by {record.reviewed_by} already")
    if record.kind not in ACTIONABLE_KINDS:
        raise InvalidInput(f"event {event_id} is {record.kind.value}: there is nothing to apply")
    if record.recipient is None:
        raise InvalidInput(f"event {event_id} names no address")
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == record.recipient))
    if subscriber is None:
        raise NotFound(f"event {event_id} names {record.recipient}, who is not a subscriber")
    event = BounceEvent(
        kind=record.kind,
        recipient=record.recipient,
        status=record.status,
        diagnostic=record.diagnostic,
        envelope_rcpt=None,
        original_message_id=None,
        classifier=record.classifier,
    )
    decision = decide(history_for(session, subscriber, now), event, settings, now)
    reason = f"{decision.reason} (applied by {by} after review of event {event_id})"
    decision = dataclasses.replace(decision, reason=reason)
    carry_out(session, subscriber, decision, record.source, now, by=by)
    record.subscriber_id = subscriber.id
    record.action = decision.action
    record.reason = reason
    record.reviewed_by, record.reviewed_at = by[:200], now
    session.flush()
    return ProcessedEvent(
        event_id=record.id,
        kind=record.kind,
        email=record.recipient,
        subscriber_id=subscriber.id,
        delivery_id=None,
        campaign_id=None,
        status=record.status,
        evidence=record.evidence,
        action=decision.action,
        reason=reason,
    )
