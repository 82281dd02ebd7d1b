"""Processing stored bounces: matching on evidence, the policy applied in one transaction."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.bounces import intake, processing
from newsletter.bounces.event import (
    STATUS_CHANGE_SOURCE,
    BounceEvent,
    BounceKind,
    BounceSource,
    Evidence,
)
from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.bounces.policy import MIN_SENT_FOR_PAUSE, BounceAction
from newsletter.bounces.report import campaign_bounce_summary
from newsletter.config import Settings
from newsletter.delivery.ledger import Claimed
from newsletter.delivery.message import message_id
from newsletter.delivery.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.delivery.verdict import SmtpReply
from newsletter.delivery.verp import verp_address
from newsletter.issues.models import Issue
from newsletter.subscribers.csvfile import read_csv
from newsletter.subscribers.importer import ImportOptions, import_batch
from newsletter.subscribers.models import (
    ConsentAction,
    ConsentEvent,
    MailingList,
    Subscriber,
    SubscriberStatus,
    SubscriberStatusChange,
    Subscription,
    SubscriptionStatus,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def dsn(
    recipient: str,
    status: str = "5.1.1",
    *,
    action: str = "failed",
    message_id: str | None = None,
    diagnostic: str | None = None,
) -> bytes:
    """A minimal RFC 3464 delivery status notification, as Postfix writes one."""
    boundary = f"dsn-{next(_ids)}"
    diagnostic = diagnostic or f"smtp; 550 {status} <{recipient}>: Recipient address rejected"
    quoted = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: bounces@news.example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{boundary}@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: bulletin@news.example.org\r\n"
        f"To: {recipient}\r\n"
        f"{quoted}"
        "Subject: Central Asia Weekly\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def arf(message_id: str) -> bytes:
    """An RFC 5965 abuse report with the recipient redacted: only the Message-ID is left."""
    boundary = f"arf-{next(_ids)}"
    return (
        "From: fbl@isp.example.net\r\n"
        "To: bounces@news.example.org\r\n"
        "Subject: Abuse report\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: TestFBL/1.0\r\nVersion: 1\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/rfc822\r\n\r\n"
        "From: bulletin@news.example.org\r\n"
        "To: redacted@isp.example.net\r\n"
        f"Message-ID: {message_id}\r\n"
        "Subject: Central Asia Weekly\r\n\r\nbody\r\n"
        f"--{boundary}--\r\n"
    ).encode()


class World:
    """Rows for one test: subscribers on lists, campaigns, and sent deliveries."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        issue = Issue(subject="Weekly", preheader="", date=dt.date(2026, 11, 26))
        session.add(issue)
        session.flush()
        self.issue_id = issue.id
        self.lists = [MailingList(name=f"list-{next(_ids)}") for _ in range(2)]
        session.add_all(self.lists)
        session.flush()

    def subscriber(self, email: str) -> Subscriber:
        subscriber = Subscriber(email=email, name="", attributes={})
        self.session.add(subscriber)
        self.session.flush()
        for mailing_list in self.lists:
            self.session.add(Subscription(subscriber_id=subscriber.id, list_id=mailing_list.id))
        self.session.flush()
        return subscriber

    def campaign(self, status: CampaignStatus = CampaignStatus.SENT) -> Campaign:
        campaign = Campaign(issue_id=self.issue_id, status=status)
        self.session.add(campaign)
        self.session.flush()
        return campaign

    def delivery(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        *,
        sent_at: dt.datetime = NOW,
        status: DeliveryStatus = DeliveryStatus.SENT,
    ) -> Delivery:
        delivery = Delivery(
            campaign_id=campaign.id,
            subscriber_id=subscriber.id,
            domain=subscriber.email.rpartition("@")[2],
            status=status,
            sent_at=sent_at,
        )
        self.session.add(delivery)
        self.session.flush()
        # As the send loop writes it at the in-flight mark: our own signed Message-ID.
        delivery.message_id = message_id(
            delivery.id, campaign.id, "news.example.org", self.settings.secret_key
        )
        self.session.flush()
        return delivery

    def verp(self, delivery: Delivery) -> str:
        return verp_address(delivery.id, self.settings.bounce_address, self.settings.secret_key)

    def process(
        self, raw: bytes, rcpt: str | None, now: dt.datetime = NOW
    ) -> list[processing.ProcessedEvent]:
        message = intake.record_raw(
            self.session, raw, source=BounceSource.SMTP, envelope_rcpt=rcpt, now=now
        )
        return processing.process_message(self.session, self.settings, message.id, now)


@pytest.fixture
def world(session: Session, settings: Settings) -> World:
    return World(session, settings)


def audit(session: Session, subscriber: Subscriber) -> list[SubscriberStatusChange]:
    return list(
        session.scalars(
            select(SubscriberStatusChange)
            .where(SubscriberStatusChange.subscriber_id == subscriber.id)
            .order_by(SubscriberStatusChange.id)
        )
    )


def test_hard_bounce_to_a_verp_address_suppresses_the_subscriber_with_a_reason(
    world: World, session: Session
) -> None:
    reader = world.subscriber("gone@example.org")
    campaign = world.campaign()
    delivery = world.delivery(campaign, reader)

    [result] = world.process(dsn("gone@example.org"), world.verp(delivery))

    assert result.action is BounceAction.SUBSCRIBER_BOUNCED
    assert (result.kind, result.delivery_id, result.status) == (
        BounceKind.HARD,
        delivery.id,
        "5.1.1",
    )
    session.refresh(reader)
    session.refresh(delivery)
    assert reader.status is SubscriberStatus.BOUNCED
    assert delivery.status is DeliveryStatus.BOUNCED
    [change] = audit(session, reader)
    assert (change.old, change.new) == (SubscriberStatus.ACTIVE, SubscriberStatus.BOUNCED)
    assert change.reason == f"hard bounce 5.1.1 on campaign {campaign.id}"


def test_verp_wins_over_the_address_in_the_report(world: World, session: Session) -> None:
    reader = world.subscriber("real@example.org")
    world.subscriber("forwarded@example.net")
    delivery = world.delivery(world.campaign(), reader)
    [result] = world.process(dsn("forwarded@example.net"), world.verp(delivery))
    assert result.subscriber_id == reader.id


def test_processing_the_same_message_twice_changes_nothing_the_second_time(
    world: World, session: Session
) -> None:
    reader = world.subscriber("twice@example.org")
    delivery = world.delivery(world.campaign(), reader)
    raw, rcpt = dsn("twice@example.org"), world.verp(delivery)

    first = world.process(raw, rcpt)
    again = world.process(raw, rcpt, now=NOW + dt.timedelta(hours=1))
    message = intake.record_raw(session, raw, source=BounceSource.IMAP, envelope_rcpt=rcpt)

    assert again == first
    assert session.scalar(select(func.count()).select_from(BounceMessage)) == 1
    assert processing.process_message(session, world.settings, message.id, NOW) == first
    assert session.scalar(select(func.count()).select_from(BounceEventRecord)) == 1
    assert len(audit(session, reader)) == 1


def test_complaint_with_a_redacted_recipient_resolves_by_message_id_and_unsubscribes(
    world: World, session: Session
) -> None:
    reader = world.subscriber("grumpy@example.org")
    delivery = world.delivery(world.campaign(), reader)
    assert delivery.message_id is not None

    [result] = world.process(arf(delivery.message_id), "bounces@bounces.example.org")

    assert (result.kind, result.action) == (BounceKind.COMPLAINT, BounceAction.UNSUBSCRIBED)
    session.refresh(reader)
    assert reader.status is SubscriberStatus.COMPLAINED
    statuses = session.scalars(
        select(Subscription.status).where(Subscription.subscriber_id == reader.id)
    )
    assert set(statuses) == {SubscriptionStatus.UNSUBSCRIBED}
    consent = session.scalar(select(ConsentEvent).where(ConsentEvent.subscriber_id == reader.id))
    assert consent is not None
    assert (consent.action, consent.list_id) == (ConsentAction.UNSUBSCRIBE, None)
    assert audit(session, reader)[0].new is SubscriberStatus.COMPLAINED


def test_a_dsn_naming_a_subscriber_without_verp_or_message_id_changes_nobody(
    world: World, session: Session
) -> None:
    reader = world.subscriber("byaddress@example.org")
    world.delivery(world.campaign(), reader)

    [result] = world.process(dsn("byaddress@example.org"), "bounces@news.example.org")

    assert (result.evidence, result.action) == (Evidence.NONE, BounceAction.NONE)
    assert (result.subscriber_id, result.delivery_id, result.email) == (
        None,
        None,
        "byaddress@example.org",
    )
    assert result.reason.startswith("unverified hard 5.1.1 naming byaddress@example.org")
    session.refresh(reader)
    assert reader.status is SubscriberStatus.ACTIVE
    assert audit(session, reader) == []


def test_bounce_for_nobody_we_know_is_stored_with_no_action(world: World, session: Session) -> None:
    [result] = world.process(dsn("stranger@example.com"), None)
    assert result.action is BounceAction.NONE
    record = session.scalar(select(BounceEventRecord))
    assert record is not None
    assert (record.subscriber_id, record.delivery_id, record.recipient) == (
        None,
        None,
        "stranger@example.com",
    )


def test_unparseable_message_is_kept_for_inspection(world: World, session: Session) -> None:
    raw = b"\x00\xff garbage \x89PNG"
    [result] = world.process(raw, None)
    assert (result.kind, result.action) == (BounceKind.UNPARSEABLE, BounceAction.NONE)
    message = session.scalar(select(BounceMessage))
    assert message is not None
    assert message.raw == raw
    assert message.processed_at is not None


def soft_bounce_in(world: World, reader: Subscriber, day: int) -> processing.ProcessedEvent:
    when = NOW + dt.timedelta(days=day)
    delivery = world.delivery(world.campaign(), reader, sent_at=when - dt.timedelta(hours=1))
    [result] = world.process(
        dsn(reader.email, "4.2.2", action="failed"), world.verp(delivery), now=when
    )
    return result


def test_soft_bounces_from_three_campaigns_over_a_week_suppress(
    world: World, session: Session
) -> None:
    reader = world.subscriber("full@example.org")
    actions = [soft_bounce_in(world, reader, day).action for day in (0, 4, 8)]
    assert actions == [BounceAction.COUNTED, BounceAction.COUNTED, BounceAction.SUBSCRIBER_BOUNCED]
    session.refresh(reader)
    assert reader.status is SubscriberStatus.BOUNCED
    assert audit(session, reader)[0].reason.startswith("3 soft bounces over 8 days")


def test_a_delivery_without_bounce_between_soft_bounces_resets_the_count(
    world: World, session: Session
) -> None:
    reader = world.subscriber("flaky@example.org")
    soft_bounce_in(world, reader, 0)
    soft_bounce_in(world, reader, 4)
    world.delivery(world.campaign(), reader, sent_at=NOW + dt.timedelta(days=5))  # got through
    assert soft_bounce_in(world, reader, 8).action is BounceAction.COUNTED
    assert soft_bounce_in(world, reader, 12).action is BounceAction.COUNTED
    assert soft_bounce_in(world, reader, 16).action is BounceAction.SUBSCRIBER_BOUNCED


def test_a_subscriber_reactivated_by_an_import_starts_their_soft_bounce_count_afresh(
    world: World, session: Session
) -> None:
    reader = world.subscriber("again@example.org")
    for day in (0, 4, 8):
        soft_bounce_in(world, reader, day)
    session.refresh(reader)
    assert reader.status is SubscriberStatus.BOUNCED

    counts = import_batch(
        session,
        world.lists[0].id,
        list(read_csv(io.BytesIO(b"email\nagain@example.org\n"))),
        ImportOptions(reactivate_suppressed=True),
        pepper=world.settings.secret_key,
        now=NOW + dt.timedelta(days=9),
    )
    assert counts.updated == 1
    session.refresh(reader)
    assert reader.status is SubscriberStatus.ACTIVE

    # As after a reinstatement: the soft bounces from before the reactivation no longer count.
    again = soft_bounce_in(world, reader, 10)
    assert again.action is BounceAction.COUNTED
    assert ": 1 of 3 sends" in again.reason
    session.refresh(reader)
    assert reader.status is SubscriberStatus.ACTIVE


def test_auto_reply_counts_nothing(world: World, session: Session) -> None:
    reader = world.subscriber("away@example.org")
    delivery = world.delivery(world.campaign(), reader)
    raw = (
        b"From: away@example.org\r\nTo: bounces@news.example.org\r\n"
        b"Subject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n"
    )
    [result] = world.process(raw, world.verp(delivery))
    assert (result.kind, result.action) == (BounceKind.AUTO_REPLY, BounceAction.NONE)
    session.refresh(reader)
    assert reader.status is SubscriberStatus.ACTIVE


def test_policy_rejection_keeps_the_subscriber(world: World, session: Session) -> None:
    reader = world.subscriber("strict@example.org")
    delivery = world.delivery(world.campaign(), reader)
    [result] = world.process(
        dsn(reader.email, "5.7.1", diagnostic="smtp; 550 5.7.1 Message rejected as spam"),
        world.verp(delivery),
    )
    assert (result.kind, result.action) == (BounceKind.POLICY, BounceAction.NONE)
    session.refresh(reader)
    assert reader.status is SubscriberStatus.ACTIVE


def test_every_bounce_source_names_its_status_change_source() -> None:
    assert set(STATUS_CHANGE_SOURCE) == set(BounceSource)


def test_campaign_pauses_when_its_hard_bounce_rate_passes_the_limit(
    world: World, session: Session
) -> None:
    campaign = world.campaign(CampaignStatus.SENDING)
    readers = [world.subscriber(f"r{n:03d}@example.org") for n in range(MIN_SENT_FOR_PAUSE)]
    deliveries = [world.delivery(campaign, reader) for reader in readers]
    limit = int(world.settings.hard_bounce_pause_rate * MIN_SENT_FOR_PAUSE)  # 5 of 100
    for delivery, reader in list(zip(deliveries, readers, strict=True))[: limit - 1]:
        world.process(dsn(reader.email), world.verp(delivery))
    session.refresh(campaign)
    status_before = campaign.status

    world.process(dsn(readers[limit].email), world.verp(deliveries[limit]))

    session.refresh(campaign)
    assert (status_before, campaign.status) == (CampaignStatus.SENDING, CampaignStatus.PAUSED)
    assert campaign.status_reason is not None
    assert "hard-bounce rate 5.00% (5 of 100 sent)" in campaign.status_reason
    summary = campaign_bounce_summary(session, campaign.id)
    assert (summary["sent"], summary["hard_bounces"], summary["by_kind"]["hard"]) == (100, 5, 5)


def test_synchronous_rejection_goes_through_the_same_policy(world: World, session: Session) -> None:
    reader = world.subscriber("rejected@example.org")
    campaign = world.campaign(CampaignStatus.SENDING)
    delivery = world.delivery(campaign, reader, status=DeliveryStatus.BOUNCED)
    claimed = Claimed(
        delivery_id=delivery.id,
        campaign_id=campaign.id,
        subscriber_id=reader.id,
        list_id=world.lists[0].id,
        email=reader.email,
        name="",
        domain="example.org",
        attempts=0,
    )
    reply = SmtpReply(550, "5.1.1", "RCPT TO: 550 5.1.1 <rejected@example.org>: User unknown")
    handler = processing.BounceRejections(world.settings)

    handler.rejected(session, claimed, reply)
    handler.rejected(session, claimed, reply)  # a retried flush records nothing twice

    session.refresh(reader)
    assert reader.status is SubscriberStatus.BOUNCED
    record = session.scalars(select(BounceEventRecord)).one()
    assert (record.source, record.status, record.kind, record.evidence) == (
        BounceSource.SYNC,
        "5.1.1",
        BounceKind.HARD,
        Evidence.SMTP,
    )


def test_webhook_events_are_applied_once_per_provider_id(world: World, session: Session) -> None:
    reader = world.subscriber("hooked@example.org")
    delivery = world.delivery(world.campaign(), reader)
    event = BounceEvent(
        kind=BounceKind.HARD,
        recipient="hooked@example.org",
        status="5.1.1",
        diagnostic=None,
        envelope_rcpt=None,
        original_message_id=delivery.message_id,
        classifier="postmark",
        source_id="pm-1",
    )
    first = processing.process_webhook_events(session, world.settings, [event], NOW)
    again = processing.process_webhook_events(session, world.settings, [event], NOW)
    assert first == again
    assert (first[0].action, first[0].evidence) == (
        BounceAction.SUBSCRIBER_BOUNCED,
        Evidence.WEBHOOK,
    )
    assert session.scalar(select(func.count()).select_from(BounceEventRecord)) == 1
    session.refresh(reader)
    assert reader.status is SubscriberStatus.BOUNCED


def webhook_event(recipient: str, message: str | None, source_id: str) -> BounceEvent:
    return BounceEvent(
        kind=BounceKind.HARD,
        recipient=recipient,
        status="5.1.1",
        diagnostic="550 5.1.1 user unknown",
        envelope_rcpt=None,
        original_message_id=message,
        classifier="ses",
        source_id=source_id,
    )


def test_a_webhook_naming_the_relay_queue_id_of_our_delivery_is_applied(
    world: World, session: Session
) -> None:
    reader = world.subscriber("queued@example.org")
    delivery = world.delivery(world.campaign(), reader)
    delivery.queue_id = "0100018c8a0fe8b3-3c8d0b8e-6d1f-4a1d-9a0e-3f1f6c2b9a10-000000"
    session.flush()
    event = webhook_event(reader.email, f"<{delivery.queue_id}>", "sns-1")

    [result] = processing.process_webhook_events(session, world.settings, [event], NOW)

    assert (result.evidence, result.delivery_id, result.action) == (
        Evidence.WEBHOOK,
        delivery.id,
        BounceAction.SUBSCRIBER_BOUNCED,
    )


@pytest.mark.parametrize("named", ["message of nobody", "message of another subscriber"])
def test_a_webhook_that_names_no_message_we_sent_to_its_recipient_changes_nobody(
    world: World, session: Session, named: str
) -> None:
    victim = world.subscriber("victim@example.org")
    other = world.subscriber("other@example.org")
    world.delivery(world.campaign(), victim)
    others = world.delivery(world.campaign(), other)
    message = "<0000-not-ours@email.amazonses.com>" if named == "message of nobody" else None
    event = webhook_event(victim.email, message or others.message_id, "sns-2")

    [result] = processing.process_webhook_events(session, world.settings, [event], NOW)

    assert (result.evidence, result.subscriber_id, result.action) == (
        Evidence.NONE,
        None,
        BounceAction.NONE,
    )
    session.refresh(victim)
    session.refresh(other)
    assert (victim.status, other.status) == (SubscriberStatus.ACTIVE, SubscriberStatus.ACTIVE)


def test_two_deliveries_with_one_queue_id_prove_nothing(world: World, session: Session) -> None:
    reader = world.subscriber("twins@example.org")
    for delivery in (
        world.delivery(world.campaign(), reader),
        world.delivery(world.campaign(), reader),
    ):
        delivery.queue_id = "4F3D2"  # Postfix reuses short queue ids over time
    session.flush()

    [result] = processing.process_webhook_events(
        session, world.settings, [webhook_event(reader.email, "<4F3D2>", "pm-9")], NOW
    )

    assert result.evidence is Evidence.NONE
