"""Erasure (GDPR Art. 17, LAW-06) in the bounce stage: no bounce record may name the person.

``newsletter subscriber delete`` erases a subscriber in every stage in one transaction; this is
the bounce stage's part.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from newsletter.bounces.models import BounceEventRecord, BounceMessage


def forget_subscriber(session: Session, subscriber_id: int, email: str) -> int:
    """Drop every bounce record that names the subscriber; how many events were removed.

    Their events and the raw messages those events came from (a DSN quotes the address) go;
    the status audit trail goes with the subscriber row (ON DELETE CASCADE). Campaign-wide
    counts lose those rows too.
    """
    events = list(
        session.scalars(
            select(BounceEventRecord).where(
                or_(
                    BounceEventRecord.subscriber_id == subscriber_id,
                    BounceEventRecord.recipient == email.lower(),
                )
            )
        )
    )
    message_ids = {e.bounce_message_id for e in events if e.bounce_message_id is not None}
    for event in events:
        session.delete(event)
    session.flush()
    if message_ids:
        session.execute(
            delete(BounceEventRecord).where(BounceEventRecord.bounce_message_id.in_(message_ids))
        )
        session.execute(delete(BounceMessage).where(BounceMessage.id.in_(message_ids)))
    return len(events)
