"""Reinstatement: a person makes a bounced or complained subscriber active again.

``newsletter subscriber reinstate EMAIL``. The change goes through the subscriber stage's
audit like every other, and its row is where the subscriber's soft-bounce count starts afresh.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

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
