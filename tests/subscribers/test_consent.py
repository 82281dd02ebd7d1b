"""Subscribe, confirm and unsubscribe: the statuses and the consent record."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.errors import InvalidInput
from newsletter.subscribers.consent import (
    confirm,
    purge_unconfirmed,
    subscribe,
    unsubscribe,
    unsubscribe_by_token,
)
from newsletter.subscribers.models import (
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    MailingList,
    Subscriber,
    SubscriberStatus,
    SubscriberStatusChange,
    SubscriptionStatus,
)
from newsletter.subscribers.service import create_list, mailable_subscribers, subscriber_lists
from newsletter.subscribers.statuses import CONSENT_CHANGE_SOURCE, StatusChangeSource
from newsletter.subscribers.tokens import confirm_token, unsubscribe_token
from tests.conftest import TEST_SECRET
from tests.subscribers.conftest import NOW, consent_actions


def test_a_confirmation_makes_a_double_opt_in_subscriber_mailable(
    session: Session, confirmed_only: MailingList
) -> None:
    subscription = subscribe(
        session,
        TEST_SECRET,
        confirmed_only.id,
        "Ann@Example.com",
        source=ConsentSource.FORM,
        now=NOW,
    )
    assert list(session.scalars(mailable_subscribers([confirmed_only.id]))) == []
    token = confirm_token(TEST_SECRET, subscription.subscriber_id, confirmed_only.id, NOW)

    confirm(session, TEST_SECRET, token, now=NOW + dt.timedelta(hours=1), ip="192.0.2.1")

    assert subscription.status is SubscriptionStatus.CONFIRMED
    assert list(session.scalars(mailable_subscribers([confirmed_only.id]))) == [
        subscription.subscriber_id
    ]
    assert consent_actions(session) == ["subscribe", "confirm"]


def test_a_confirmation_token_is_single_use(session: Session, confirmed_only: MailingList) -> None:
    subscription = subscribe(
        session, TEST_SECRET, confirmed_only.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )
    token = confirm_token(TEST_SECRET, subscription.subscriber_id, confirmed_only.id, NOW)
    confirm(session, TEST_SECRET, token, now=NOW)

    with pytest.raises(InvalidInput, match="used"):
        confirm(session, TEST_SECRET, token, now=NOW)


def test_an_old_confirmation_token_does_not_confirm_a_later_subscription(
    session: Session, confirmed_only: MailingList
) -> None:
    first = subscribe(
        session, TEST_SECRET, confirmed_only.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )
    old = confirm_token(TEST_SECRET, first.subscriber_id, confirmed_only.id, NOW)
    unsubscribe(
        session,
        first.subscriber_id,
        list_id=confirmed_only.id,
        source=ConsentSource.FORM,
        now=NOW + dt.timedelta(hours=1),
    )
    subscribe(
        session,
        TEST_SECRET,
        confirmed_only.id,
        "a@example.com",
        source=ConsentSource.FORM,
        now=NOW + dt.timedelta(hours=2),
    )

    with pytest.raises(InvalidInput):
        confirm(session, TEST_SECRET, old, now=NOW + dt.timedelta(hours=3))


def test_an_expired_confirmation_token_is_refused(
    session: Session, confirmed_only: MailingList
) -> None:
    subscription = subscribe(
        session, TEST_SECRET, confirmed_only.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )
    token = confirm_token(TEST_SECRET, subscription.subscriber_id, confirmed_only.id, NOW)

    with pytest.raises(InvalidInput, match="expired"):
        confirm(session, TEST_SECRET, token, now=NOW + dt.timedelta(days=3))
    assert subscription.status is SubscriptionStatus.UNCONFIRMED


def test_unsubscribing_from_one_list_keeps_the_others(
    session: Session, weekly: MailingList
) -> None:
    alerts = create_list(session, "alerts")
    subscription = subscribe(
        session, TEST_SECRET, weekly.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )
    subscribe(session, TEST_SECRET, alerts.id, "a@example.com", source=ConsentSource.FORM, now=NOW)

    changed = unsubscribe(
        session, subscription.subscriber_id, list_id=weekly.id, source=ConsentSource.EMAIL, now=NOW
    )

    assert changed
    assert subscriber_lists(session, subscription.subscriber_id) == {
        "alerts": SubscriptionStatus.CONFIRMED,
        "weekly": SubscriptionStatus.UNSUBSCRIBED,
    }
    assert list(session.scalars(mailable_subscribers([alerts.id]))) == [subscription.subscriber_id]


def test_unsubscribing_from_all_lists_suppresses_the_subscriber(
    session: Session, weekly: MailingList
) -> None:
    alerts = create_list(session, "alerts")
    subscription = subscribe(
        session, TEST_SECRET, weekly.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )
    subscribe(session, TEST_SECRET, alerts.id, "a@example.com", source=ConsentSource.FORM, now=NOW)

    unsubscribe(session, subscription.subscriber_id, source=ConsentSource.EMAIL, now=NOW)

    assert set(subscriber_lists(session, subscription.subscriber_id).values()) == {
        SubscriptionStatus.UNSUBSCRIBED
    }
    assert list(session.scalars(mailable_subscribers([weekly.id, alerts.id]))) == []


def test_unsubscribing_twice_changes_nothing_the_second_time(
    session: Session, weekly: MailingList
) -> None:
    subscription = subscribe(
        session, TEST_SECRET, weekly.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )
    token = unsubscribe_token(TEST_SECRET, subscription.subscriber_id, weekly.id)

    first = unsubscribe_by_token(session, TEST_SECRET, token, now=NOW, ip="192.0.2.7")
    second = unsubscribe_by_token(session, TEST_SECRET, token, now=NOW + dt.timedelta(days=400))

    assert (first, second) == (True, False)
    assert consent_actions(session) == ["subscribe", "unsubscribe"]


def test_a_tampered_unsubscribe_token_changes_nothing(
    session: Session, weekly: MailingList
) -> None:
    subscription = subscribe(
        session, TEST_SECRET, weekly.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )
    token = unsubscribe_token(TEST_SECRET, subscription.subscriber_id, weekly.id)
    tampered = token[:-1] + ("a" if token[-1] != "a" else "b")

    with pytest.raises(InvalidInput):
        unsubscribe_by_token(session, TEST_SECRET, tampered, now=NOW)
    assert subscription.status is SubscriptionStatus.CONFIRMED


def test_the_unsubscribe_record_keeps_source_and_ip(session: Session, weekly: MailingList) -> None:
    subscription = subscribe(
        session, TEST_SECRET, weekly.id, "a@example.com", source=ConsentSource.FORM, now=NOW
    )

    unsubscribe(
        session, subscription.subscriber_id, source=ConsentSource.EMAIL, now=NOW, ip="192.0.2.9"
    )

    event = session.scalars(
        sa.select(ConsentEvent).where(ConsentEvent.action == ConsentAction.UNSUBSCRIBE)
    ).one()
    assert (event.source, event.ip, event.list_id, event.at) == (
        ConsentSource.EMAIL,
        "192.0.2.9",
        None,
        NOW,
    )
    assert subscription.status is SubscriptionStatus.UNSUBSCRIBED
    assert (
        session.get_one(Subscriber, subscription.subscriber_id).status
        is SubscriberStatus.UNSUBSCRIBED
    )


def test_stale_unconfirmed_subscriptions_are_purged_with_their_subscribers(
    session: Session, weekly: MailingList, confirmed_only: MailingList
) -> None:
    stale = subscribe(
        session,
        TEST_SECRET,
        confirmed_only.id,
        "stale@example.com",
        source=ConsentSource.FORM,
        now=NOW,
    )
    subscribe(
        session,
        TEST_SECRET,
        confirmed_only.id,
        "fresh@example.com",
        source=ConsentSource.FORM,
        now=NOW + dt.timedelta(days=29),
    )
    subscribe(
        session,
        TEST_SECRET,
        confirmed_only.id,
        "both@example.com",
        source=ConsentSource.FORM,
        now=NOW,
    )
    subscribe(
        session, TEST_SECRET, weekly.id, "both@example.com", source=ConsentSource.FORM, now=NOW
    )

    stale_id = stale.subscriber_id

    purged = purge_unconfirmed(
        session, older_than=dt.timedelta(days=30), now=NOW + dt.timedelta(days=31)
    )

    assert purged == 2
    remaining = session.scalars(sa.select(Subscriber.email).order_by(Subscriber.email)).all()
    assert remaining == ["both@example.com", "fresh@example.com"]
    assert session.get(Subscriber, stale_id) is None
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ConsentEvent)
            .where(ConsentEvent.subscriber_id == stale_id)
        )
        == 0
    )


def left_everything_then_signed_up_again(
    session: Session, weekly: MailingList, confirmed_only: MailingList
) -> tuple[int, str]:
    """Ann leaves every list (by the mailto link), then signs up to a double opt-in list: her
    subscriber id and the confirmation token she is mailed."""
    first = subscribe(
        session, TEST_SECRET, weekly.id, "ann@example.com", source=ConsentSource.FORM, now=NOW
    )
    unsubscribe(session, first.subscriber_id, source=ConsentSource.EMAIL, now=NOW)
    again = subscribe(
        session,
        TEST_SECRET,
        confirmed_only.id,
        "ann@example.com",
        source=ConsentSource.FORM,
        now=NOW,
    )
    token = confirm_token(TEST_SECRET, again.subscriber_id, confirmed_only.id, NOW)
    return again.subscriber_id, token


def test_confirming_a_new_sign_up_makes_someone_who_left_everything_active_again(
    session: Session, weekly: MailingList, confirmed_only: MailingList
) -> None:
    subscriber_id, token = left_everything_then_signed_up_again(session, weekly, confirmed_only)

    confirm(session, TEST_SECRET, token, now=NOW + dt.timedelta(minutes=5))

    subscriber = session.get(Subscriber, subscriber_id)
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.ACTIVE
    assert list(session.scalars(mailable_subscribers([confirmed_only.id]))) == [subscriber.id]
    assert list(session.scalars(mailable_subscribers([weekly.id]))) == []  # still left


def test_leaving_every_list_and_coming_back_are_in_the_status_audit(
    session: Session, weekly: MailingList, confirmed_only: MailingList
) -> None:
    _, token = left_everything_then_signed_up_again(session, weekly, confirmed_only)
    later = NOW + dt.timedelta(minutes=5)
    confirm(session, TEST_SECRET, token, now=later)

    changes = session.scalars(
        sa.select(SubscriberStatusChange).order_by(SubscriberStatusChange.id)
    ).all()
    assert [(c.old, c.new, c.source, c.at) for c in changes] == [
        (SubscriberStatus.ACTIVE, SubscriberStatus.UNSUBSCRIBED, StatusChangeSource.EMAIL, NOW),
        (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.ACTIVE, StatusChangeSource.FORM, later),
    ]


def test_every_consent_source_names_its_status_change_source() -> None:
    assert set(CONSENT_CHANGE_SOURCE) == set(ConsentSource)
