"""End to end: send a campaign through a real relay, bounce some recipients, send the next one.

Synchronous 5xx (the relay refuses at RCPT) go through ``BounceRejections`` while sending;
DSNs for recipients the relay accepted come back to the VERP envelope sender the relay saw,
submitted over SMTP to our receiver. Everyone bounced hard is suppressed, and the next
campaign does not mail them; a soft bounce only counts.
"""

from __future__ import annotations

import dataclasses
import smtplib

from sqlalchemy import select

from newsletter import jobs, sending
from newsletter.bounces.event import BounceKind, BounceSource
from newsletter.bounces.models import BounceEventRecord
from newsletter.bounces.processing import BounceRejections
from newsletter.bounces.report import campaign_bounce_summary
from newsletter.bounces.sources.receiver import BackgroundProcessor, running_receiver
from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_factory, session_scope, utcnow
from newsletter.delivery import service as delivery_service
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.delivery.sender import send_batch
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.bounces.test_processing import dsn
from tests.delivery import seed
from tests.delivery.relay import RelayHandler, free_port, running_relay

REJECTED = [f"rejected{n}@example.org" for n in range(3)]
HARD = [f"gone{n}@example.net" for n in range(4)]
SOFT = ["full@example.net"]
FINE = [f"reader{n:02d}@example.com" for n in range(12)]


def refuse_rejected(recipient: str, tries: int) -> str | None:
    if not recipient.startswith("rejected"):
        return None
    return f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"


def send_campaign(settings: Settings, issue_id: int) -> int:
    """Start a campaign and send it in-process, with the bounce stage's rejection handler.

    This is ``jobs.run_until_idle`` with ``rejections=`` wired, which sending.send_context does
    not do yet.
    """
    with session_scope(settings) as session:
        # The same issue goes to the list more than once on purpose: `send --again`.
        campaign = delivery_service.create_campaign(
            session, issue_id=issue_id, list_names=["weekly"], again=True
        )
        delivery_service.schedule_or_start(session, settings, campaign, utcnow())
        campaign_id = campaign.id
    while True:
        jobs.tick(settings)
        transport = SmtpTransport(settings.smtp, require_tls=settings.smtp_require_tls)
        try:
            ctx = dataclasses.replace(
                sending.send_context(settings, transport), rejections=BounceRejections(settings)
            )
            result = send_batch(ctx, 0)
        finally:
            transport.close()
        if not result.claimed and result.next_due_at is None:
            return campaign_id


def statuses(settings: Settings) -> dict[str, SubscriberStatus]:
    with session_scope(settings) as session:
        return {e: s for e, s in session.execute(select(Subscriber.email, Subscriber.status))}


def test_bounced_subscribers_are_suppressed_and_skipped_by_the_next_campaign(
    committed_settings: Settings,
) -> None:
    with running_relay(RelayHandler(rules=[refuse_rejected])) as relay:
        settings = dataclasses.replace(committed_settings, smtp=parse_smtp_url(relay.env_url))
        issue_id = seed.rendered_issue(settings)
        seed.subscribers(settings, "weekly", REJECTED + HARD + SOFT + FINE)

        first = send_campaign(settings, issue_id)

        # The relay refused three at RCPT: suppressed right away, through the policy.
        after_send = statuses(settings)
        assert {e: after_send[e] for e in REJECTED} == dict.fromkeys(
            REJECTED, SubscriberStatus.BOUNCED
        )
        verp = {a.rcpt: a.mail_from for a in relay.handler.accepted}
        assert set(verp) == set(HARD + SOFT + FINE)

        # Their MTAs bounce later, to the VERP envelope sender, through our receiver.
        processor = BackgroundProcessor(settings, session_factory(settings).begin)
        processor.start(sweep=False)
        port = free_port()
        with (
            running_receiver(
                settings, processor, sessions=session_factory(settings).begin, port=port
            ),
            smtplib.SMTP("127.0.0.1", port) as smtp,
        ):
            for email in HARD:
                smtp.sendmail("", [verp[email]], dsn(email, "5.1.1"))
            for email in SOFT:
                smtp.sendmail("", [verp[email]], dsn(email, "4.2.2", action="delayed"))
        processor.join()  # after the receiver stopped: every hand-off is queued
        assert processor.failed == 0

        after_dsn = statuses(settings)
        assert {e: after_dsn[e] for e in HARD} == dict.fromkeys(HARD, SubscriberStatus.BOUNCED)
        assert after_dsn[SOFT[0]] is SubscriberStatus.ACTIVE
        assert set(after_dsn[e] for e in FINE) == {SubscriberStatus.ACTIVE}
        with session_scope(settings) as session:
            sources = {
                recipient: source
                for recipient, source in session.execute(
                    select(BounceEventRecord.recipient, BounceEventRecord.source).where(
                        BounceEventRecord.kind == BounceKind.HARD
                    )
                )
            }
            bounced_rows = set(
                session.scalars(
                    select(Subscriber.email)
                    .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                    .where(Delivery.campaign_id == first, Delivery.status == DeliveryStatus.BOUNCED)
                )
            )
            summary = campaign_bounce_summary(session, first)
        assert sources == {
            **dict.fromkeys(REJECTED, BounceSource.SYNC),
            **dict.fromkeys(HARD, BounceSource.SMTP),
        }
        assert bounced_rows == set(REJECTED + HARD)
        assert (summary["sent"], summary["hard_bounces"]) == (20, 7)
        assert summary["by_kind"]["soft"] == 1

        # The next campaign mails only those still active: the soft bounce, and the fine ones.
        before = len(relay.handler.accepted)
        tries_before = dict(relay.handler.tries)
        send_campaign(settings, issue_id)
        second = {a.rcpt for a in relay.handler.accepted[before:]}
        assert second == set(SOFT + FINE)
        # Not even tried: the suppressed addresses never reached RCPT TO again.
        assert {e: relay.handler.tries[e] for e in REJECTED} == {
            e: tries_before[e] for e in REJECTED
        }
