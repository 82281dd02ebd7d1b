"""The subscriber-status audit: the one way a subscriber's status changes, always with its row.

Consent changes (a confirmation makes someone who had left every list active again; an
unsubscribe from every list makes them ``unsubscribed``), the importer (a suppressed subscriber
reactivated with ``--reactivate-suppressed``) and the bounce stage (the policy, a reinstatement,
a person's review) all change statuses here, so ``subscriber_status_changes`` has a row for
every change: from what, to what, why, from where and by whom. A row that makes a subscriber
``active`` again is also where the bounce policy's soft-bounce count starts afresh
(``last_made_active``). Every function takes the caller's session and never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.subscribers.models import Subscriber, SubscriberStatusChange
from newsletter.subscribers.statuses import (
    StatusChangeSource,
    SubscriberStatus,
    check_subscriber_transition,
)


def change_status(
    session: Session,
    subscriber: Subscriber,
    new: SubscriberStatus,
    *,
    reason: str,
    source: StatusChangeSource,
    now: dt.datetime,
    by: str | None = None,
) -> SubscriberStatusChange:
    """Change ``subscriber``'s status, with its audit row; ``InvalidTransition`` for a change
    the lifecycle forbids (``statuses.SUBSCRIBER_TRANSITIONS``)."""
    old = subscriber.status
    subscriber.transition(new)
    subscriber.updated_at = now
    change = SubscriberStatusChange(
        subscriber_id=subscriber.id, old=old, new=new, reason=reason, source=source, by=by, at=now
    )
    session.add(change)
    session.flush()
    return change


def reactivate(
    session: Session,
    previous: Mapping[int, SubscriberStatus],
    *,
    reason: str,
    source: StatusChangeSource,
    now: dt.datetime,
    by: str | None = None,
) -> None:
    """Make the subscribers of ``previous`` (id -> their status now) active again, each with
    its audit row: one UPDATE and one executemany, for the importer's batches."""
    if not previous:
        return
    for subscriber_id, old in previous.items():
        check_subscriber_transition(subscriber_id, old, SubscriberStatus.ACTIVE)
    session.execute(
        sa.update(Subscriber)
        .where(Subscriber.id.in_(list(previous)))
        .values(status=SubscriberStatus.ACTIVE, updated_at=now)
    )
    session.execute(
        sa.insert(SubscriberStatusChange),
        [
            {
                "subscriber_id": subscriber_id,
                "old": old,
                "new": SubscriberStatus.ACTIVE,
                "reason": reason,
                "source": source,
                "by": by,
                "at": now,
            }
            for subscriber_id, old in previous.items()
        ],
    )


def last_made_active(session: Session, subscriber_id: int) -> dt.datetime | None:
    """When the subscriber was last made active again (reinstated, reactivated by an import,
    back by their own confirmation); None if never."""
    return session.scalar(
        sa.select(sa.func.max(SubscriberStatusChange.at)).where(
            SubscriberStatusChange.subscriber_id == subscriber_id,
            SubscriberStatusChange.new == SubscriberStatus.ACTIVE,
        )
    )
