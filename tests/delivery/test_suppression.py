"""The suppression rule is written once: the audience, the claim and both fences agree on it.

Every way a subscriber can stop being mailable is set up on one campaign; the audience, the
claim's skip, the in-flight mark and (on PostgreSQL) the one-statement record-and-mark must
each let through exactly the same subscribers.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from newsletter.delivery import audience, fence, ledger
from newsletter.delivery.models import (
    DELIVERY_TRANSITIONS,
    Campaign,
    CampaignList,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    may_become,
)
from newsletter.delivery.policy import Outcome
from newsletter.delivery.verdict import Verdict
from newsletter.issues.models import Issue
from newsletter.subscribers.models import (
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
OWNER = "test:1:fence"
ACTIVE, CONFIRMED = SubscriberStatus.ACTIVE, SubscriptionStatus.CONFIRMED
# email -> (subscriber status, {list: subscription status}); "main" and "extra" are the
# campaign's lists, "other" is not.
CASES: dict[str, tuple[SubscriberStatus, dict[str, SubscriptionStatus]]] = {
    "mailable@example.org": (ACTIVE, {"main": CONFIRMED}),
    "on-both@example.org": (ACTIVE, {"main": CONFIRMED, "extra": CONFIRMED}),
    "left-one@example.org": (ACTIVE, {"main": SubscriptionStatus.UNSUBSCRIBED, "extra": CONFIRMED}),
    "left@example.org": (ACTIVE, {"main": SubscriptionStatus.UNSUBSCRIBED}),
    "elsewhere@example.org": (
        ACTIVE,
        {"main": SubscriptionStatus.UNSUBSCRIBED, "other": CONFIRMED},
    ),
    "unconfirmed@example.org": (ACTIVE, {"main": SubscriptionStatus.UNCONFIRMED}),
    "bounced@example.org": (SubscriberStatus.BOUNCED, {"main": CONFIRMED}),
    "complained@example.org": (SubscriberStatus.COMPLAINED, {"main": CONFIRMED}),
    "unsubscribed@example.org": (SubscriberStatus.UNSUBSCRIBED, {"main": CONFIRMED}),
    "blocked@example.org": (SubscriberStatus.BLOCKED, {"extra": CONFIRMED}),
}
MAILABLE = {"mailable@example.org", "on-both@example.org", "left-one@example.org"}


@pytest.fixture
def campaign(session: Session) -> Campaign:
    """Everyone subscribed and confirmed, a started campaign; then the cases are applied."""
    issue = Issue(subject="Weekly", preheader="", date=dt.date(2026, 12, 1))
    lists = {name: MailingList(name=f"suppression-{name}") for name in ("main", "extra", "other")}
    session.add_all([issue, *lists.values()])
    session.flush()
    campaign = Campaign(
        issue_id=issue.id,
        status=CampaignStatus.SENDING,
        lists=[CampaignList(list_id=lists[name].id) for name in ("main", "extra")],
    )
    session.add(campaign)
    for email, (_status, subscriptions) in CASES.items():
        subscriber = Subscriber(email=email, name="", attributes={})
        session.add(subscriber)
        session.flush()
        for name in subscriptions:
            session.add(Subscription(subscriber_id=subscriber.id, list_id=lists[name].id))
    session.flush()
    audience.create_deliveries(session, campaign, NOW)
    assert rows(session, campaign) == set(CASES)
    for email, (status, subscriptions) in CASES.items():
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        subscriber.status = status
        for name, subscription_status in subscriptions.items():
            session.execute(
                update(Subscription)
                .where(
                    Subscription.subscriber_id == subscriber.id,
                    Subscription.list_id == lists[name].id,
                )
                .values(status=subscription_status)
            )
    session.flush()
    return campaign


def rows(session: Session, campaign: Campaign) -> set[str]:
    return set(
        session.scalars(
            select(Subscriber.email)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.campaign_id == campaign.id)
        )
    )


def delivery_ids(session: Session, campaign: Campaign) -> dict[str, int]:
    found = session.execute(
        select(Subscriber.email, Delivery.id)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
        .where(Delivery.campaign_id == campaign.id)
    )
    return {email: delivery_id for email, delivery_id in found}


def sending(session: Session, campaign: Campaign) -> None:
    """Every row claimed by OWNER, as the claim leaves them (no suppression applied)."""
    session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign.id)
        .values(status=DeliveryStatus.SENDING, lease_owner=OWNER, lease_expires_at=NOW)
    )


def test_the_audience_holds_exactly_the_mailable(session: Session, campaign: Campaign) -> None:
    mailed = set(
        session.scalars(
            select(Subscriber.email).where(
                Subscriber.id.in_(audience.audience(campaign).scalar_subquery())
            )
        )
    )
    assert mailed == MAILABLE


def test_the_claim_skips_exactly_the_suppressed(session: Session, campaign: Campaign) -> None:
    claimed = ledger.claim_batch(
        session, campaign.id, owner=OWNER, now=NOW, lease_seconds=60, limit=100
    )
    assert {row.email for row in claimed} == MAILABLE
    skipped = session.scalars(
        select(Subscriber.email)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
        .where(Delivery.status == DeliveryStatus.SKIPPED)
    )
    assert set(skipped) == set(CASES) - MAILABLE


def test_the_in_flight_mark_lets_through_exactly_the_mailable(
    session: Session, campaign: Campaign
) -> None:
    sending(session, campaign)
    ids = delivery_ids(session, campaign)
    marked = {
        email
        for email, delivery_id in ids.items()
        if fence.mark_in_flight(session, delivery_id, owner=OWNER, message_id="<m@x>", now=NOW)
    }
    assert marked == MAILABLE


def record_and_mark(session: Session, previous: tuple[int, Outcome], delivery_id: int) -> bool:
    """The send loop's step: one statement on PostgreSQL, two in one transaction on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return fence.record_and_mark(
            session, previous, delivery_id, owner=OWNER, message_id="<m@x>", now=NOW
        )
    fence.record_outcome(session, previous[0], owner=OWNER, outcome=previous[1], now=NOW)
    return fence.mark_in_flight(session, delivery_id, owner=OWNER, message_id="<m@x>", now=NOW)


def test_recording_and_marking_at_once_lets_through_exactly_the_mailable(
    session: Session, campaign: Campaign
) -> None:
    sending(session, campaign)
    ids = delivery_ids(session, campaign)
    # A row of its own whose outcome each call records along with the next mark.
    previous = ids.pop("mailable@example.org")
    sent = Outcome(DeliveryStatus.SENT, Verdict.ACCEPTED, "250 ok", "2.0.0", "Q1")
    marked = set()
    for email, delivery_id in ids.items():
        session.execute(
            update(Delivery)
            .where(Delivery.id == previous)
            .values(status=DeliveryStatus.SENDING, lease_owner=OWNER)
        )
        if record_and_mark(session, (previous, sent), delivery_id):
            marked.add(email)
    assert marked == MAILABLE - {"mailable@example.org"}
    recorded = session.get(Delivery, previous, populate_existing=True)
    assert recorded is not None
    assert (recorded.status, recorded.verdict, recorded.queue_id) == (
        DeliveryStatus.SENT,
        Verdict.ACCEPTED,
        "Q1",
    )


def test_every_delivery_status_has_its_edges_and_bounced_is_final() -> None:
    assert set(DELIVERY_TRANSITIONS) == set(DeliveryStatus)
    assert DELIVERY_TRANSITIONS[DeliveryStatus.BOUNCED] == frozenset()
    assert DELIVERY_TRANSITIONS[DeliveryStatus.SENT] == {DeliveryStatus.BOUNCED}
    # Only a claim puts a row in flight, and only from a row that is still to do.
    assert may_become(DeliveryStatus.SENDING) == [DeliveryStatus.PENDING, DeliveryStatus.DEFERRED]
    # The outcome statement may only write over rows in flight (or given up on by recovery).
    assert set(may_become(*fence.OUTCOME_STATUSES)) == {
        DeliveryStatus.SENDING,
        DeliveryStatus.POSSIBLY_SENT,
    }


def test_a_sent_row_is_never_given_back_to_be_sent_again(
    session: Session, campaign: Campaign
) -> None:
    ids = delivery_ids(session, campaign)
    session.execute(
        update(Delivery)
        .where(Delivery.id == ids["mailable@example.org"])
        .values(status=DeliveryStatus.SENT)
    )
    assert ledger.requeue_unsent(session, campaign.id, NOW) == 0
    assert ledger.requeue_policy_held(session, campaign.id, NOW) == 0
    released = ledger.release(session, [ids["mailable@example.org"]], owner=OWNER, now=NOW)
    assert released == 0
