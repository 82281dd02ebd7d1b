"""No stranger can bounce or unsubscribe a subscriber: only evidence changes one.

A campaign goes out through a real aiosmtpd relay (so every delivery has its real VERP
envelope sender and its signed Message-ID); then reports arrive over SMTP at our own bounce
receiver, the way an attacker or a mailbox provider would send them. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import itertools
import smtplib
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from newsletter import jobs
from newsletter.bounces.event import Evidence
from newsletter.bounces.models import BounceEventRecord
from newsletter.bounces.sources.receiver import BackgroundProcessor, running_receiver
from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_factory, session_scope
from newsletter.delivery.message import delivery_of_message_id, message_id
from newsletter.subscribers.models import Subscriber, SubscriberStatus, Subscription
from newsletter.subscribers.models import SubscriptionStatus as Sub
from tests.conftest import Run
from tests.delivery import seed
from tests.delivery.relay import Accepted, RelayHandler, free_port, running_relay
from tests.delivery.test_campaign import emails, start

_boundaries = itertools.count(1)
READERS = emails("reader", 120)
PLAIN_BOUNCE_ADDRESS = "bounces@news.example.org"


def dsn(recipients: list[str], status: str = "5.1.1") -> bytes:
    """One RFC 3464 report with a Final-Recipient block per address, as an MTA writes it."""
    boundary = f"dsn-{next(_boundaries)}"
    blocks = "".join(
        f"\r\nFinal-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{r}>: Recipient address rejected\r\n"
        for r in recipients
    )
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@news.example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nIt could not be delivered.\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n{blocks}"
        f"--{boundary}--\r\n"
    ).encode()


def arf(recipient: str, original_message_id: str) -> bytes:
    """An RFC 5965 abuse report naming ``recipient``, quoting the original's Message-ID."""
    boundary = f"arf-{next(_boundaries)}"
    return (
        "From: fbl@isp.example.net\r\nTo: bounces@news.example.org\r\nSubject: Abuse report\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: TestFBL/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: <{recipient}>\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: bulletin@news.example.org\r\nTo: {recipient}\r\n"
        f"Message-ID: {original_message_id}\r\nSubject: Central Asia Weekly\r\n"
        f"--{boundary}--\r\n"
    ).encode()


@dataclass
class Sent:
    """A campaign sent to READERS: what the relay saw of each recipient's message."""

    settings: Settings
    campaign_id: int
    messages: dict[str, Accepted]

    def verp(self, email: str) -> str:
        return self.messages[email].mail_from

    def message_id(self, email: str) -> str:
        value = self.messages[email].message()["Message-ID"]
        assert value is not None
        return str(value)

    def report(self, raw: bytes, rcpt: str) -> None:
        """Submit one report to our bounce receiver over SMTP and wait until it is applied."""
        processor = BackgroundProcessor(self.settings, session_factory(self.settings).begin)
        processor.start(sweep=False)
        port = free_port()
        with (
            running_receiver(
                self.settings, processor, sessions=session_factory(self.settings).begin, port=port
            ),
            smtplib.SMTP("127.0.0.1", port) as smtp,
        ):
            smtp.sendmail("", [rcpt], raw)
        processor.join()
        assert processor.failed == 0

    def status(self, email: str) -> SubscriberStatus:
        with session_scope(self.settings) as session:
            status = session.scalar(select(Subscriber.status).where(Subscriber.email == email))
        assert status is not None
        return status

    def statuses(self) -> dict[str, SubscriberStatus]:
        with session_scope(self.settings) as session:
            rows = session.execute(select(Subscriber.email, Subscriber.status))
            return {email: status for email, status in rows}

    def events(self) -> list[BounceEventRecord]:
        with session_scope(self.settings) as session:
            return list(session.scalars(select(BounceEventRecord).order_by(BounceEventRecord.id)))


@pytest.fixture
def sent(committed_settings: Settings) -> Sent:
    with running_relay(RelayHandler()) as relay:
        settings = dataclasses.replace(committed_settings, smtp=parse_smtp_url(relay.env_url))
        issue_id = seed.rendered_issue(settings)
        seed.subscribers(settings, "weekly", READERS)
        campaign_id = start(settings, issue_id, ["weekly"])
        jobs.run_until_idle(settings, wait=True)
        messages = {accepted.rcpt: accepted for accepted in relay.handler.accepted}
    assert set(messages) == set(READERS)
    return Sent(settings, campaign_id, messages)


def everyone_active(sent: Sent) -> bool:
    return set(sent.statuses().values()) == {SubscriberStatus.ACTIVE}


def test_a_dsn_without_a_verp_token_is_stored_unverified_and_listed_for_review(
    sent: Sent, run_cli: Run
) -> None:
    victim = READERS[7]

    sent.report(dsn([victim]), PLAIN_BOUNCE_ADDRESS)

    assert everyone_active(sent)
    [event] = sent.events()
    assert (event.evidence, event.subscriber_id, event.recipient) == (Evidence.NONE, None, victim)
    [listed] = run_cli("bounces", "review", "--json").lines()
    assert (listed["event"], listed["kind"], listed["email"], listed["subscriber_status"]) == (
        event.id,
        "hard",
        victim,
        "active",
    )
    report = run_cli("bounces", "report", "--json").json()
    assert (report["unverified"], report["by_evidence"]["none"]) == (1, 1)


def test_an_arf_report_without_our_message_id_unsubscribes_nobody(sent: Sent, run_cli: Run) -> None:
    victim = READERS[3]

    sent.report(arf(victim, "<CAF00d@mail.example.com>"), PLAIN_BOUNCE_ADDRESS)

    assert everyone_active(sent)
    [event] = sent.events()
    assert (event.kind.value, event.evidence, event.recipient) == (
        "complaint",
        Evidence.NONE,
        victim,
    )
    assert [line["event"] for line in run_cli("bounces", "review", "--json").lines()] == [event.id]


def test_the_same_arf_with_our_message_id_of_that_delivery_is_applied(sent: Sent) -> None:
    grumpy = READERS[3]

    sent.report(arf(grumpy, sent.message_id(grumpy)), PLAIN_BOUNCE_ADDRESS)

    assert sent.status(grumpy) is SubscriberStatus.COMPLAINED
    [event] = sent.events()
    assert (event.evidence, event.action.value) == (Evidence.MESSAGE_ID, "unsubscribed")
    with session_scope(sent.settings) as session:
        subscriptions = set(
            session.scalars(
                select(Subscription.status)
                .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                .where(Subscriber.email == grumpy)
            )
        )
    assert subscriptions == {Sub.UNSUBSCRIBED}
    statuses = sent.statuses()
    assert {e for e, s in statuses.items() if s is not SubscriberStatus.ACTIVE} == {grumpy}


def test_our_message_id_of_one_subscriber_cannot_unsubscribe_another(sent: Sent) -> None:
    attacker, victim = READERS[0], READERS[1]

    sent.report(arf(victim, sent.message_id(attacker)), PLAIN_BOUNCE_ADDRESS)

    assert everyone_active(sent)
    assert [e.evidence for e in sent.events()] == [Evidence.NONE]


def test_a_forged_message_id_is_refused_before_any_lookup(sent: Sent) -> None:
    victim = READERS[5]
    genuine = sent.message_id(victim)
    ours = delivery_of_message_id(genuine, sent.settings.secret_key)
    assert ours is not None
    # The victim's own delivery and campaign numbers, signed with another key.
    forged = message_id(*ours, "news.example.org", "another-key-0123456789abcdefghijk")
    assert forged != genuine

    sent.report(arf(victim, forged), PLAIN_BOUNCE_ADDRESS)

    assert everyone_active(sent)
    assert [e.evidence for e in sent.events()] == [Evidence.NONE]


def test_one_dsn_to_a_valid_verp_address_naming_100_recipients_bounces_only_its_own(
    sent: Sent,
) -> None:
    owner = READERS[42]
    named = READERS[:100]
    assert owner in named

    sent.report(dsn(named), sent.verp(owner))

    statuses = sent.statuses()
    assert {e for e, s in statuses.items() if s is not SubscriberStatus.ACTIVE} == {owner}
    assert statuses[owner] is SubscriberStatus.BOUNCED
    events = sent.events()
    assert len(events) == 100
    assert [(e.recipient, e.evidence) for e in events if e.evidence is not Evidence.NONE] == [
        (owner, Evidence.VERP)
    ]


def test_a_tampered_verp_token_is_treated_as_no_token(sent: Sent, run_cli: Run) -> None:
    victim = READERS[9]
    genuine = sent.verp(victim)
    local, _, domain = genuine.partition("@")
    last = local[-1]
    tampered = f"{local[:-1]}{'a' if last != 'a' else 'b'}@{domain}"

    sent.report(dsn([victim]), tampered)

    assert everyone_active(sent)
    [event] = sent.events()
    assert (event.evidence, event.subscriber_id, event.delivery_id) == (Evidence.NONE, None, None)
    assert len(run_cli("bounces", "review", "--json").lines()) == 1


def test_a_person_may_apply_an_unverified_event_after_review(sent: Sent, run_cli: Run) -> None:
    gone = READERS[11]
    sent.report(dsn([gone]), PLAIN_BOUNCE_ADDRESS)
    [event] = sent.events()

    applied = run_cli("bounces", "apply", str(event.id), "--by", "editor", "--json")

    assert applied.exit_code == 0, applied.stderr
    assert (applied.json()["action"], applied.json()["evidence"]) == ("subscriber bounced", "none")
    assert sent.status(gone) is SubscriberStatus.BOUNCED
    [reviewed] = sent.events()
    assert (reviewed.reviewed_by, reviewed.evidence) == ("editor", Evidence.NONE)
    assert "applied by editor after review of event" in reviewed.reason
    assert run_cli("bounces", "review", "--json").lines() == []
    again = run_cli("bounces", "apply", str(event.id), "--json")
    assert again.exit_code == 2
