"""Opting out through our links: the one-click POST and what a link points at."""

from __future__ import annotations

from sqlalchemy.orm import Session

from newsletter.subscribers.consent import subscribe
from newsletter.subscribers.models import (
    ConsentSource,
    MailingList,
    Subscriber,
    SubscriberStatus,
    SubscriptionStatus,
)
from newsletter.subscribers.optout import unsubscribe_one_click
from newsletter.subscribers.service import subscriber_lists
from newsletter.subscribers.tokens import unsubscribe_token
from tests.conftest import TEST_SECRET
from tests.subscribers.conftest import NOW, consent_actions


def test_one_click_of_a_deleted_list_unsubscribes_from_everything(
    session: Session, weekly: MailingList
) -> None:
    subscription = subscribe(
        session, TEST_SECRET, weekly.id, "ann@example.com", source=ConsentSource.FORM, now=NOW
    )
    token = unsubscribe_token(TEST_SECRET, subscription.subscriber_id, weekly.id + 1000)

    target = unsubscribe_one_click(session, TEST_SECRET, token, now=NOW)

    assert target.list_id is None
    subscriber = session.get(Subscriber, subscription.subscriber_id)
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED


def test_one_click_records_the_withdrawal_once(session: Session, weekly: MailingList) -> None:
    subscription = subscribe(
        session, TEST_SECRET, weekly.id, "ann@example.com", source=ConsentSource.FORM, now=NOW
    )
    token = unsubscribe_token(TEST_SECRET, subscription.subscriber_id, weekly.id)

    unsubscribe_one_click(session, TEST_SECRET, token, now=NOW, ip="192.0.2.9")
    unsubscribe_one_click(session, TEST_SECRET, token, now=NOW, ip="192.0.2.9")

    assert consent_actions(session) == ["subscribe", "unsubscribe"]
    session.expire_all()
    assert subscriber_lists(session, subscription.subscriber_id) == {
        "weekly": SubscriptionStatus.UNSUBSCRIBED
    }
