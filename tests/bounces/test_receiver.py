"""The SMTP receiver against real SMTP submissions: store-then-250, hostile input, bursts."""

from __future__ import annotations

import dataclasses
import smtplib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter.bounces.event import BounceKind, BounceSource, Evidence
from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.bounces.sources.receiver import (
    MAX_MESSAGE_BYTES,
    BackgroundProcessor,
    Receiver,
    running_receiver,
)
from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_factory, session_scope
from newsletter.subscribers.models import (
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.subscribers.tokens import unsubscribe_mailto, unsubscribe_token
from tests.bounces.test_processing import World, dsn
from tests.delivery.relay import free_port, running_relay

CORPUS = Path(__file__).resolve().parent / "corpus"
BOUNCE_RCPT = "bounces+b1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa@news.example.org"


@dataclass
class Running:
    settings: Settings
    port: int
    processor: BackgroundProcessor
    receiver: Receiver

    def send(self, raw: bytes, rcpt: str = BOUNCE_RCPT, mail_from: str = "") -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            smtp.sendmail(mail_from, [rcpt], raw)

    def finish(self) -> None:
        self.receiver.handler.drain()  # every 250 so far is on the processor's queue
        self.processor.join()


@pytest.fixture
def running(committed_settings: Settings) -> Iterator[Running]:
    processor = BackgroundProcessor(committed_settings, session_factory(committed_settings).begin)
    processor.start(sweep=False)
    port = free_port()
    with running_receiver(
        committed_settings, processor, sessions=session_factory(committed_settings).begin, port=port
    ) as receiver:
        running = Running(committed_settings, port, processor, receiver)
        yield running
        if processor.thread.is_alive():
            processor.join()


def stored(settings: Settings) -> list[BounceMessage]:
    with session_scope(settings) as session:
        return list(session.scalars(select(BounceMessage).order_by(BounceMessage.id)))


def test_null_sender_bounce_is_stored_then_processed(running: Running) -> None:
    with session_scope(running.settings) as session:
        world = World(session, running.settings)
        verp = world.verp(world.delivery(world.campaign(), world.subscriber("gone@example.org")))

    running.send(dsn("gone@example.org"), rcpt=verp)
    running.finish()

    [message] = stored(running.settings)
    assert (message.source, message.envelope_rcpt) == (BounceSource.SMTP, verp)
    assert message.processed_at is not None
    with session_scope(running.settings) as session:
        status = session.scalar(
            select(Subscriber.status).where(Subscriber.email == "gone@example.org")
        )
    assert status is SubscriberStatus.BOUNCED


def test_a_dsn_to_a_forged_verp_address_is_stored_unverified(running: Running) -> None:
    with session_scope(running.settings) as session:
        session.add(Subscriber(email="victim@example.org", name="", attributes={}))

    running.send(dsn("victim@example.org"))  # BOUNCE_RCPT: a token that is not ours
    running.finish()

    with session_scope(running.settings) as session:
        status = session.scalar(
            select(Subscriber.status).where(Subscriber.email == "victim@example.org")
        )
        record = session.scalars(select(BounceEventRecord)).one()
        assert (record.evidence, record.subscriber_id, record.recipient) == (
            Evidence.NONE,
            None,
            "victim@example.org",
        )
    assert status is SubscriberStatus.ACTIVE


def test_mail_for_other_domains_is_refused_at_rcpt(running: Running) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        running.send(dsn("x@example.org"), rcpt="someone@elsewhere.example.com")
    assert refused.value.recipients["someone@elsewhere.example.com"][0] == 550
    assert stored(running.settings) == []


@pytest.mark.parametrize("path", sorted((CORPUS / "hostile").glob("*.eml")), ids=lambda p: p.stem)
def test_hostile_message_is_accepted_and_quarantined(running: Running, path: Path) -> None:
    running.send(path.read_bytes())
    running.send(b"From: x\r\n\r\n" + bytes(range(256)) * 40)  # and the receiver lives on
    running.finish()

    messages = stored(running.settings)
    assert len(messages) == 2
    assert all(m.processed_at is not None for m in messages)
    with session_scope(running.settings) as session:
        kinds = set(session.scalars(select(BounceEventRecord.kind)))
    assert kinds <= {BounceKind.UNPARSEABLE, BounceKind.UNKNOWN}


def test_message_over_the_size_limit_is_refused_with_552(running: Running) -> None:
    huge = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (MAX_MESSAGE_BYTES // 1000 + 10)
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
        running.send(huge)
    assert refused.value.smtp_code == 552
    assert stored(running.settings) == []


def test_the_same_bounce_delivered_twice_is_stored_once(running: Running) -> None:
    raw = dsn("again@example.org")
    running.send(raw)
    running.send(raw)
    running.finish()
    assert len(stored(running.settings)) == 1
    with session_scope(running.settings) as session:
        assert session.scalar(select(func.count()).select_from(BounceEventRecord)) == 1


def test_a_burst_from_many_connections_is_stored_and_processed_once_each(
    running: Running,
) -> None:
    count = 120
    messages = [dsn(f"burst{n:03d}@example.org") for n in range(count)]

    def send_all(chunk: list[bytes]) -> None:
        with smtplib.SMTP("127.0.0.1", running.port, timeout=30) as smtp:
            for raw in chunk:
                smtp.sendmail("", [BOUNCE_RCPT], raw)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send_all, [messages[i::8] for i in range(8)]))
    running.finish()

    assert len(stored(running.settings)) == count
    with session_scope(running.settings) as session:
        recipients = [r or "" for r in session.scalars(select(BounceEventRecord.recipient))]
    assert sorted(recipients) == sorted(f"burst{n:03d}@example.org" for n in range(count))


def test_the_receiver_never_sends_mail(committed_settings: Settings) -> None:
    with running_relay() as relay:
        settings = dataclasses.replace(committed_settings, smtp=parse_smtp_url(relay.env_url))
        processor = BackgroundProcessor(settings, session_factory(settings).begin)
        processor.start(sweep=False)
        port = free_port()
        with (
            running_receiver(
                settings, processor, sessions=session_factory(settings).begin, port=port
            ),
            smtplib.SMTP("127.0.0.1", port) as smtp,
        ):
            for path in sorted(CORPUS.glob("*/*.eml")):
                smtp.sendmail("", [BOUNCE_RCPT], path.read_bytes())
        processor.join()  # after the receiver stopped: every hand-off is queued
        assert relay.handler.accepted == []
        assert relay.handler.transactions == 0


def test_mail_to_the_list_unsubscribe_mailto_unsubscribes_at_once(running: Running) -> None:
    settings = running.settings
    with session_scope(settings) as session:
        weekly = MailingList(name="weekly", description="")
        reader = Subscriber(email="reader@example.org", name="Reader", attributes={})
        session.add_all([weekly, reader])
        session.flush()
        session.add(
            Subscription(
                subscriber_id=reader.id, list_id=weekly.id, status=SubscriptionStatus.CONFIRMED
            )
        )
        mailto = unsubscribe_mailto(
            settings, unsubscribe_token(settings.secret_key, reader.id, weekly.id)
        )
    address = mailto.removeprefix("mailto:").split("?")[0]
    tampered = address.replace("unsubscribe+", "unsubscribe+x", 1)

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        running.send(
            b"Subject: unsubscribe\r\n\r\nplease\r\n", rcpt=tampered, mail_from="reader@example.org"
        )
    running.send(
        b"Subject: unsubscribe\r\n\r\nplease\r\n",
        rcpt=address.upper(),
        mail_from="reader@example.org",
    )

    with session_scope(settings) as session:
        status = session.scalar(
            select(Subscription.status).where(Subscription.list_id == weekly.id)
        )
    assert status is SubscriptionStatus.UNSUBSCRIBED
    assert stored(settings) == []  # an unsubscribe request is not a bounce
