"""Opting out through a link of ours: what an unsubscribe link points at, and the one-click POST.

Both verify the token before anything is looked up with it (``tokens.read_unsubscribe_token``)
and change nothing for a forged, tampered or unknown one. The caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.db import get_or_raise
from newsletter.subscribers.consent import Evidence, event_values, unsubscribe
from newsletter.subscribers.models import (
    SUBSCRIPTION_TRANSITIONS,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.subscribers.tokens import read_unsubscribe_token

# The statuses from which a subscription may become unsubscribed (its transition table).
_LEAVABLE = [
    status
    for status, targets in SUBSCRIPTION_TRANSITIONS.items()
    if SubscriptionStatus.UNSUBSCRIBED in targets
]


# The one-click POST's two statements, built once against the tables: constructing an ORM
# statement and its cache key per request cost more than running it (docs/benchmarks.md,
# "One-click unsubscribe").
_subscriptions = cast(sa.Table, Subscription.__table__)
_LEAVE_LIST = (
    sa.update(_subscriptions)
    .where(
        _subscriptions.c.subscriber_id == sa.bindparam("who"),
        _subscriptions.c.list_id == sa.bindparam("which"),
        _subscriptions.c.status.in_(_LEAVABLE),
    )
    .values(status=SubscriptionStatus.UNSUBSCRIBED, updated_at=sa.bindparam("at_now"))
    # The list's name for the answer page, in the same round trip.
    .returning(
        sa.select(MailingList.name)
        .where(MailingList.id == _subscriptions.c.list_id)
        .scalar_subquery()
        .label("name")
    )
)
_WITHDRAWAL = sa.insert(cast(sa.Table, ConsentEvent.__table__))


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    """What an unsubscribe link points at, read before anything changes."""

    subscriber_id: int
    list_id: int | None  # None: every list
    list_name: str | None
    already_unsubscribed: bool


def unsubscribe_one_click(
    session: Session,
    secret: str,
    token: str,
    *,
    now: dt.datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> UnsubscribeTarget:
    """The RFC 8058 one-click POST: leave the token's list at once; the target it had.

    Raises like ``unsubscribe_target``. This is the one request a mailbox provider sends for
    every "unsubscribe" press, so its common case is one UPDATE and one INSERT: the UPDATE
    applies the one transition of ``SUBSCRIPTION_TRANSITIONS`` that leads to ``unsubscribed``
    (from the statuses that allow it), the INSERT is the withdrawal's consent event. Anything
    else (a token for every list, a list left already, a deleted list, an unknown subscriber)
    takes the general path.
    """
    claim = read_unsubscribe_token(secret, token)
    changed = None
    if claim.list_id is not None:
        changed = session.execute(
            _LEAVE_LIST,
            {"who": claim.subscriber_id, "which": claim.list_id, "at_now": now},
        ).first()
    if changed is None:
        target = unsubscribe_target(session, secret, token)
        unsubscribe(
            session,
            target.subscriber_id,
            list_id=target.list_id,
            source=ConsentSource.EMAIL,
            now=now,
            ip=ip,
            user_agent=user_agent,
        )
        return target
    session.execute(
        _WITHDRAWAL,
        event_values(
            claim.subscriber_id,
            claim.list_id,
            ConsentAction.UNSUBSCRIBE,
            ConsentSource.EMAIL,
            now,
            Evidence(ip=ip, user_agent=user_agent),
        ),
    )
    return UnsubscribeTarget(
        claim.subscriber_id, claim.list_id, changed.name, already_unsubscribed=False
    )


def unsubscribe_target(session: Session, secret: str, token: str) -> UnsubscribeTarget:
    """What an unsubscribe link would do, changing nothing (the page before the button).

    ``InvalidInput`` for a forged or tampered token, ``NotFound`` for a genuine one whose
    subscriber no longer exists (erased): neither may change anything. A token for a deleted
    list stands for every list, the safe side.
    """
    claim = read_unsubscribe_token(secret, token)
    subscriber = get_or_raise(
        session, Subscriber, claim.subscriber_id, "this unsubscribe link belongs to nobody we know"
    )
    mailing_list = session.get(MailingList, claim.list_id) if claim.list_id is not None else None
    still = sa.select(Subscription.list_id).where(
        Subscription.subscriber_id == subscriber.id,
        Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    if mailing_list is not None:
        still = still.where(Subscription.list_id == mailing_list.id)
        already = session.scalar(still.limit(1)) is None
    else:
        already = (
            subscriber.status is not SubscriberStatus.ACTIVE
            and session.scalar(still.limit(1)) is None
        )
    return UnsubscribeTarget(
        subscriber_id=subscriber.id,
        list_id=mailing_list.id if mailing_list is not None else None,
        list_name=mailing_list.name if mailing_list is not None else None,
        already_unsubscribed=already,
    )
