"""Sending a campaign in-process through a real SMTP relay: exactly once, whatever goes wrong.

These tests assert counts and order, never seconds; pause, cancel, rate limits and back-off on
the test's clock are in ``test_send_loop``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy import select

from newsletter import jobs, sending
from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_scope, utcnow
from newsletter.delivery import service
from newsletter.delivery.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.delivery.transports.memory import MemoryTransport
from newsletter.delivery.verp import delivery_id_from_verp
from newsletter.subscribers.models import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from tests.conftest import POSTAL_ADDRESS
from tests.delivery import seed
from tests.delivery.relay import Relay, RelayHandler, free_port, running_relay


def emails(prefix: str, count: int, domain: str = "example.org") -> list[str]:
    return [f"{prefix}{n:04d}@{domain}" for n in range(count)]


@pytest.fixture
def relay() -> Iterator[Relay]:
    with running_relay() as running:
        yield running


def with_relay(settings: Settings, relay: Relay, **changes: object) -> Settings:
    return dataclasses.replace(settings, smtp=parse_smtp_url(relay.env_url), **changes)


def start(settings: Settings, issue_id: int, lists: list[str]) -> int:
    with session_scope(settings) as session:
        campaign = service.create_campaign(session, issue_id=issue_id, list_names=lists)
        service.schedule_or_start(session, settings, campaign, utcnow())
        return campaign.id


def ledger(settings: Settings, campaign_id: int) -> dict[str, DeliveryStatus]:
    with session_scope(settings) as session:
        rows = session.execute(
            select(Subscriber.email, Delivery.status)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.campaign_id == campaign_id)
        )
        return {email: status for email, status in rows}


def send_in_background(settings: Settings, *, wait: bool) -> threading.Thread:
    """Run the embedded send loop in a thread, as ``newsletter send`` would in its process."""
    sender = threading.Thread(target=jobs.run_until_idle, args=(settings,), kwargs={"wait": wait})
    sender.start()
    return sender


def wait_for_first_message(relay: Relay) -> None:
    while not relay.handler.accepted:
        time.sleep(0.01)


def campaign_status(settings: Settings, campaign_id: int) -> CampaignStatus:
    with session_scope(settings) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status


def test_every_recipient_gets_one_personalised_message(
    committed_settings: Settings, relay: Relay
) -> None:
    settings = with_relay(committed_settings, relay, batch_size=7)
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", emails("a", 30))
    seed.subscribers(settings, "markets", emails("a", 10) + emails("m", 10))  # 10 on both lists

    campaign_id = start(settings, issue_id, ["weekly", "markets"])
    jobs.run_until_idle(settings, wait=True)

    expected = set(emails("a", 30) + emails("m", 10))
    assert relay.handler.copies() == dict.fromkeys(expected, 1)
    assert set(ledger(settings, campaign_id).values()) == {DeliveryStatus.SENT}
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT
    accepted = relay.handler.accepted[0]
    message = accepted.message()
    assert message["To"].addresses[0].addr_spec == accepted.rcpt
    assert message["To"].addresses[0].display_name.startswith("Reader ")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        delivery_id_from_verp(accepted.mail_from, settings.bounce_address, settings.secret_key)
        is not None
    )
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "%%NL." not in html
    assert "%%NL." not in text
    assert "/u/" in html
    assert "/u/" in text
    assert POSTAL_ADDRESS in " ".join(text.split())


def test_failures_end_with_good_addresses_delivered_once(committed_settings: Settings) -> None:
    soft = set(emails("soft", 5))
    hard = set(emails("hard", 5))
    throttled_tries = Counter[str]()

    def throttle_domain_twice(rcpt: str, _before: int) -> str | None:
        if not rcpt.endswith("@throttled.example"):
            return None
        throttled_tries["domain"] += 1
        return "421 4.7.0 too many messages, slow down" if throttled_tries["domain"] <= 2 else None

    handler = RelayHandler(
        rules=[
            lambda rcpt, before: (
                "451 4.3.0 try again later" if rcpt in soft and before == 0 else None
            ),
            lambda rcpt, _before: "550 5.1.1 no such user" if rcpt in hard else None,
            throttle_domain_twice,
        ],
        drop_every=23,
    )
    with running_relay(handler) as relay:
        settings = with_relay(committed_settings, relay, retry_schedule=(1, 1, 1), batch_size=20)
        issue_id = seed.rendered_issue(settings)
        good = emails("ok", 60) + emails("t", 10, "throttled.example")
        seed.subscribers(settings, "weekly", good + sorted(soft) + sorted(hard))

        campaign_id = start(settings, issue_id, ["weekly"])
        jobs.run_until_idle(settings, wait=True)

    statuses = ledger(settings, campaign_id)
    assert relay.handler.copies() == dict.fromkeys([*good, *soft], 1)
    assert {e for e, s in statuses.items() if s == DeliveryStatus.BOUNCED} == hard
    assert {e for e, s in statuses.items() if s == DeliveryStatus.SENT} == set(good) | soft
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT


def test_a_recipient_deferred_past_the_schedule_fails_and_resend_unsent_retries_it(
    committed_settings: Settings,
) -> None:
    stubborn = "stubborn@example.org"
    give_up = {"on": True}
    handler = RelayHandler(
        rules=[
            lambda rcpt, before: (
                "452 4.2.2 mailbox busy" if rcpt == stubborn and give_up["on"] else None
            )
        ]
    )
    with running_relay(handler) as relay:
        settings = with_relay(committed_settings, relay, retry_schedule=(0, 0))
        issue_id = seed.rendered_issue(settings)
        seed.subscribers(settings, "weekly", [stubborn, *emails("ok", 3)])
        campaign_id = start(settings, issue_id, ["weekly"])
        jobs.run_until_idle(settings, wait=True)

        assert ledger(settings, campaign_id)[stubborn] == DeliveryStatus.FAILED
        assert handler.tries[stubborn] == 3  # the first attempt and two retries

        give_up["on"] = False
        with session_scope(settings) as session:
            assert service.resend_unsent(session, campaign_id, utcnow()).requeued == 1
        jobs.run_until_idle(settings, wait=True)

    assert relay.handler.copies() == dict.fromkeys([stubborn, *emails("ok", 3)], 1)
    assert ledger(settings, campaign_id)[stubborn] == DeliveryStatus.SENT


def test_an_unsubscribe_during_the_send_is_honoured(
    committed_settings: Settings, relay: Relay
) -> None:
    settings = with_relay(committed_settings, relay, rate_limit=40.0, batch_size=200)
    issue_id = seed.rendered_issue(settings)
    recipients = emails("r", 80)
    seed.subscribers(settings, "weekly", recipients)
    leaving = recipients[-1]
    campaign_id = start(settings, issue_id, ["weekly"])

    sender = send_in_background(settings, wait=True)
    wait_for_first_message(relay)
    with session_scope(settings) as session:  # the whole batch is already claimed by now
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == leaving)).one()
        subscriber.transition(SubscriberStatus.UNSUBSCRIBED)
    sender.join(timeout=30)

    assert leaving not in relay.handler.copies()
    assert ledger(settings, campaign_id)[leaving] == DeliveryStatus.SKIPPED
    assert sum(relay.handler.copies().values()) == len(recipients) - 1


def test_two_senders_at_once_never_send_the_same_row(
    committed_settings: Settings, relay: Relay
) -> None:
    settings = with_relay(committed_settings, relay, batch_size=25, max_connections=2)
    issue_id = seed.rendered_issue(settings)
    recipients = emails("two", 300)
    seed.subscribers(settings, "weekly", recipients)
    start(settings, issue_id, ["weekly"])

    def lane(number: int) -> None:
        while sending.run_batch(settings, number).claimed:
            pass

    threads = [threading.Thread(target=lane, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert relay.handler.copies() == dict.fromkeys(recipients, 1)


def test_scheduled_campaign_starts_when_due(committed_settings: Settings, relay: Relay) -> None:
    settings = with_relay(committed_settings, relay)
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", emails("s", 3))
    now = utcnow()
    due = now + dt.timedelta(hours=1)
    with session_scope(settings) as session:
        campaign = service.create_campaign(
            session, issue_id=issue_id, list_names=["weekly"], send_at=due
        )
        assert service.schedule_or_start(session, settings, campaign, now) == 3
        campaign_id = campaign.id
        assert service.start_due_campaigns(session, settings, due - dt.timedelta(seconds=1)) == []
    assert campaign_status(settings, campaign_id) == CampaignStatus.SCHEDULED

    with session_scope(settings) as session:  # what the next tick after send_at does
        assert service.start_due_campaigns(session, settings, due) == [campaign_id]
    jobs.run_until_idle(settings, wait=True)

    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT
    assert relay.handler.copies() == dict.fromkeys(emails("s", 3), 1)


def test_leaving_the_campaign_list_mid_send_is_honoured_despite_other_lists(
    committed_settings: Settings, relay: Relay
) -> None:
    settings = with_relay(committed_settings, relay, rate_limit=40.0, batch_size=200)
    issue_id = seed.rendered_issue(settings)
    recipients = emails("l", 60)
    weekly = seed.subscribers(settings, "weekly", recipients)
    seed.subscribers(settings, "markets", recipients)  # stays confirmed here
    leaving = recipients[-1]
    campaign_id = start(settings, issue_id, ["weekly"])

    sender = send_in_background(settings, wait=True)
    wait_for_first_message(relay)
    with session_scope(settings) as session:
        subscription = session.scalars(
            select(Subscription)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email == leaving, Subscription.list_id == weekly)
        ).one()
        subscription.transition(SubscriptionStatus.UNSUBSCRIBED, utcnow())
    sender.join(timeout=30)

    assert leaving not in relay.handler.copies()
    assert ledger(settings, campaign_id)[leaving] == DeliveryStatus.SKIPPED


def test_a_relay_that_is_down_waits_instead_of_burning_retries(
    committed_settings: Settings,
) -> None:
    down_port = free_port()  # nothing listens here yet
    settings = dataclasses.replace(
        committed_settings,
        smtp=parse_smtp_url(f"smtp://127.0.0.1:{down_port}"),
        retry_schedule=(1, 1),
    )
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", emails("d", 5))
    campaign_id = start(settings, issue_id, ["weekly"])

    jobs.run_until_idle(settings, wait=False)

    with session_scope(settings) as session:
        rows = session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)).all()
        assert {r.status for r in rows} == {DeliveryStatus.PENDING}
        assert {r.attempts for r in rows} == {0}
    with running_relay(RelayHandler(), port=down_port) as relay:
        jobs.run_until_idle(settings, wait=True)
    assert relay.handler.copies() == dict.fromkeys(emails("d", 5), 1)
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT


def test_with_a_dkim_key_every_message_is_signed_and_verifies(
    committed_settings: Settings, relay: Relay, tmp_path: Path, dkim_keys: Any
) -> None:
    (pem, txt), _ = dkim_keys
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(pem)
    settings = with_relay(
        committed_settings,
        relay,
        dkim_key_file=key_file,
        dkim_selector="nl2026",
        dkim_domain="news.example.org",
    )
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", emails("k", 3))
    start(settings, issue_id, ["weekly"])

    jobs.run_until_idle(settings, wait=True)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl2026._domainkey.news.example.org."
        return txt

    assert len(relay.handler.accepted) == 3
    for accepted in relay.handler.accepted:
        assert dkim.verify(accepted.content, dnsfunc=dns)
        signature = accepted.message()["DKIM-Signature"]
        assert "list-unsubscribe-post" in signature.lower()


def test_the_embedded_loop_sends_through_the_transport_it_is_given(
    committed_settings: Settings,
) -> None:
    # No relay runs: only the caller's transport can deliver anything.
    settings = dataclasses.replace(
        committed_settings, smtp=parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), batch_size=4
    )
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", emails("t", 10))
    transport = MemoryTransport()

    campaign_id = start(settings, issue_id, ["weekly"])
    jobs.run_until_idle(settings, wait=False, transport=transport)

    assert sorted(sent.recipient for sent in transport.sent) == emails("t", 10)
    assert set(ledger(settings, campaign_id).values()) == {DeliveryStatus.SENT}


def test_batches_given_one_transport_each_use_it_and_close_its_connection(
    committed_settings: Settings,
) -> None:
    settings = dataclasses.replace(committed_settings, batch_size=3)
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", emails("o", 6))
    transport = MemoryTransport()
    start(settings, issue_id, ["weekly"])

    first = sending.run_batch(settings, 0, transport=transport)
    closed_after_first = transport.closed
    second = sending.run_batch(settings, 0, transport=transport)

    # The connection closes before the lane is given back (the lanes cap open connections);
    # the transport itself stays the caller's, and the next batch opens it again.
    assert (first.sent, second.sent, closed_after_first, transport.closed) == (3, 3, True, True)
    assert sorted(sent.recipient for sent in transport.sent) == emails("o", 6)
