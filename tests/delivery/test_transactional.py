"""Transactional mail: the confirmation message, its outbox row, retries and cancellation."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import dkim

from newsletter.config import Settings
from newsletter.db import SessionFactory, session_factory, session_scope
from newsletter.delivery import outbox, transactional
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.outbox import OutboxMessage, OutboxStatus
from newsletter.delivery.transports.memory import MemoryTransport
from newsletter.subscribers.consent import confirm, subscribe
from newsletter.subscribers.models import ConsentSource
from newsletter.subscribers.service import create_list
from newsletter.subscribers.tokens import read_confirm_token
from tests.delivery.conftest import DkimKey

NOW = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def pending_signup(settings: Settings, address: str = "ann@example.org") -> tuple[int, int]:
    """An unconfirmed subscription and its queued confirmation: (subscriber id, outbox id)."""
    with session_scope(settings) as session:
        alerts = create_list(session, f"alerts-{address}", double_opt_in=True)
        subscription = subscribe(
            session, settings.secret_key, alerts.id, address, source=ConsentSource.FORM, now=NOW
        )
        queued = transactional.queue_confirmation(
            session, subscription.subscriber_id, alerts.id, NOW
        )
        return subscription.subscriber_id, queued


def row(settings: Settings, message_id: int) -> OutboxMessage:
    with session_scope(settings) as session:
        found = session.get(OutboxMessage, message_id)
        assert found is not None
        session.expunge(found)
        return found


def sessions(settings: Settings) -> SessionFactory:
    return session_factory(settings).begin


def test_the_confirmation_is_plain_auto_generated_and_links_to_confirm(
    committed_settings: Settings,
) -> None:
    subscriber_id, queued = pending_signup(committed_settings)
    transport = MemoryTransport()

    outcome = transactional.send_queued(
        sessions(committed_settings), committed_settings, transport, queued, clock=Clock()
    )

    assert outcome.result == "sent"
    [sent] = transport.sent
    assert sent.recipient == "ann@example.org"
    assert sent.envelope_from == committed_settings.bounce_address.addr_spec
    message = email.message_from_bytes(sent.message, policy=email.policy.default)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None
    assert message["List-Id"] is None
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    link = next(line for line in body.splitlines() if "/confirm/" in line)
    token = link.rsplit("/", 1)[1]
    claim = read_confirm_token(committed_settings.secret_key, token, NOW)
    assert claim.subscriber_id == subscriber_id
    assert max(len(line) for line in sent.message.split(b"\r\n")) <= 78
    assert row(committed_settings, queued).status is OutboxStatus.SENT


def test_the_confirmation_is_dkim_signed_when_a_key_is_set(
    committed_settings: Settings, dkim_keys: tuple[DkimKey, DkimKey]
) -> None:
    (pem, record), _ = dkim_keys
    signer = DkimSigner.from_pem(pem, "s2026", committed_settings.sending_domain)
    _, queued = pending_signup(committed_settings)
    transport = MemoryTransport()

    transactional.send_queued(
        sessions(committed_settings), committed_settings, transport, queued, signer=signer
    )

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name.decode().startswith("s2026._domainkey.") else None

    assert dkim.verify(transport.sent[0].message, dnsfunc=dns)


def test_a_relay_that_is_down_is_retried_on_the_schedule_then_given_up(
    committed_settings: Settings,
) -> None:
    import dataclasses

    settings = dataclasses.replace(committed_settings, retry_schedule=(60, 300))
    _, queued = pending_signup(settings)
    transport = MemoryTransport()
    transport.drop("example.org")
    clock = Clock()

    first = transactional.send_queued(sessions(settings), settings, transport, queued, clock=clock)
    early = transactional.send_queued(sessions(settings), settings, transport, queued, clock=clock)

    assert (first.result, early.result) == ("retry", "not due")
    assert row(settings, queued).next_attempt_at == NOW + dt.timedelta(seconds=60)
    clock.now = NOW + dt.timedelta(seconds=61)
    assert (
        transactional.send_queued(
            sessions(settings), settings, transport, queued, clock=clock
        ).result
        == "retry"
    )
    clock.now = NOW + dt.timedelta(seconds=400)
    last = transactional.send_queued(sessions(settings), settings, transport, queued, clock=clock)
    assert last.result == "failed"
    assert row(settings, queued).attempts == 3
    assert not transport.sent


def test_a_permanent_refusal_is_not_retried(committed_settings: Settings) -> None:
    _, queued = pending_signup(committed_settings)
    transport = MemoryTransport()
    transport.answer("ann@example.org", 550, "5.1.1 No such user")

    outcome = transactional.send_queued(
        sessions(committed_settings), committed_settings, transport, queued, clock=Clock()
    )

    assert outcome.result == "failed"
    assert row(committed_settings, queued).status is OutboxStatus.FAILED


def test_a_subscription_confirmed_meanwhile_is_not_mailed_again(
    committed_settings: Settings,
) -> None:
    from newsletter.subscribers.tokens import confirm_token

    subscriber_id, queued = pending_signup(committed_settings)
    with session_scope(committed_settings) as session:
        list_id = row(committed_settings, queued).list_id
        token = confirm_token(committed_settings.secret_key, subscriber_id, list_id, NOW)
        confirm(session, committed_settings.secret_key, token, now=NOW)
    transport = MemoryTransport()

    outcome = transactional.send_queued(
        sessions(committed_settings), committed_settings, transport, queued, clock=Clock()
    )

    assert outcome.result == "cancelled"
    assert not transport.sent


def test_one_claim_wins_and_a_dead_senders_lease_is_taken_over(
    committed_settings: Settings,
) -> None:
    _, queued = pending_signup(committed_settings)
    with session_scope(committed_settings) as session:
        first = outbox.claim(session, queued, NOW, lease_seconds=300)
        second = outbox.claim(session, queued, NOW, lease_seconds=300)
        later = outbox.claim(session, queued, NOW + dt.timedelta(seconds=301), lease_seconds=300)

    assert first is not None
    assert second is None
    assert later is not None
    assert later.attempts == 2


def test_one_waiting_confirmation_per_person_and_list(committed_settings: Settings) -> None:
    subscriber_id, queued = pending_signup(committed_settings)
    with session_scope(committed_settings) as session:
        list_id = session.get(OutboxMessage, queued).list_id  # type: ignore[union-attr]
        again = transactional.queue_confirmation(session, subscriber_id, list_id, NOW)

    assert again == queued
