"""Bounce-stage changes to subscribers: the audited status change, reinstatement, erasure.

Every status change this stage makes goes through ``change_status``, which writes the audit
row. The pipeline that decides those changes is split by job: ``intake`` stores raw messages,
``matching`` ties events to deliveries on evidence, ``processing`` applies the policy,
``review`` lets a person act on the events no evidence ties to us.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.subscribers.audit import change_status
from newsletter.subscribers.models import SubscriberStatusChange
from newsletter.subscribers.service import find_subscriber
from newsletter.subscribers.statuses import StatusChangeSource, SubscriberStatus


def reinstate(session: Session, email: str, now: dt.datetime, by: str) -> SubscriberStatusChange:
    """Make a bounced (or complained...) subscriber active again, with an audit row.

    Soft bounces from before this moment stop counting. Lists a complaint unsubscribed them
    from stay unsubscribed: that needs their own new consent.
    """
    subscriber = find_subscriber(session, email)
    return change_status(
        session,
        subscriber,
        SubscriberStatus.ACTIVE,
        reason=f"reinstated by {by} (was {subscriber.status.value})",
        source=StatusChangeSource.ADMIN,
        now=now,
        by=by,
    )


def forget_subscriber(session: Session, subscriber_id: int, email: str) -> int:
    """Erasure (GDPR Art. 17, LAW-06): drop every bounce record that names the subscriber.

    Their events and the raw messages those events came from (a DSN quotes the address) go;
    the status audit trail goes with the subscriber row (ON DELETE CASCADE). Campaign-wide
    counts lose those rows too. Returns how many events were removed.
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
