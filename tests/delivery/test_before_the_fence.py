"""Everything that can make a message unbuildable is found before its row is marked in flight.

Such a row ends ``failed`` with the reason, never ``possibly_sent``, and the batch goes on; a
campaign whose every message would fail (a setting, a list name) pauses itself with the reason
and does not hold the other campaigns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select, update

from newsletter import jobs
from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_scope, utcnow
from newsletter.delivery import service
from newsletter.delivery.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.delivery.recipient import NOT_THROUGH_THIS_RELAY
from newsletter.subscribers.models import MailingList, Subscriber
from tests.delivery import seed
from tests.delivery.relay import Relay, running_relay
from tests.delivery.test_campaign import campaign_status, emails, ledger, start, with_relay

IDN = "v8@пример.рф"
IDN_ON_THE_WIRE = "v8@xn--e1afmkfd.xn--p1ai"
UTF8_LOCAL_PART = "üser@example.com"
UTF8_AT_IDN = "почта@пример.рф"  # both: only SMTPUTF8 carries it
UTF8_AT_IDN_ON_THE_WIRE = "почта@xn--e1afmkfd.xn--p1ai"


def hundred_with_two_international(settings: Settings) -> list[str]:
    """97 everyday addresses, an IDN one (ASCII local part) and two non-ASCII local parts."""
    recipients = [*emails("plain", 48), IDN, *emails("more", 49), UTF8_LOCAL_PART, UTF8_AT_IDN]
    seed.subscribers(settings, "weekly", recipients)
    return recipients


def rows(settings: Settings, campaign_id: int) -> dict[str, Delivery]:
    with session_scope(settings) as session:
        found = session.execute(
            select(Subscriber.email, Delivery)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.campaign_id == campaign_id)
        )
        return {email: delivery for email, delivery in found}


@pytest.fixture
def plain_relay() -> Iterator[Relay]:
    """A relay without SMTPUTF8 (aiosmtpd offers it unless told not to)."""
    with running_relay(enable_SMTPUTF8=False) as relay:
        yield relay


def test_through_a_relay_without_smtputf8_the_idn_goes_and_the_utf8_local_part_fails(
    committed_settings: Settings, plain_relay: Relay
) -> None:
    settings = with_relay(committed_settings, plain_relay, batch_size=30)
    issue_id = seed.rendered_issue(settings)
    recipients = hundred_with_two_international(settings)

    campaign_id = start(settings, issue_id, ["weekly"])
    jobs.run_until_idle(settings, wait=True)

    statuses = ledger(settings, campaign_id)
    assert list(statuses.values()).count(DeliveryStatus.SENT) == 98
    assert list(statuses.values()).count(DeliveryStatus.POSSIBLY_SENT) == 0
    failed = {e for e, s in statuses.items() if s == DeliveryStatus.FAILED}
    assert failed == {UTF8_LOCAL_PART, UTF8_AT_IDN}
    for email in failed:
        row = rows(settings, campaign_id)[email]
        assert row.last_reply is not None
        assert row.last_reply.startswith(NOT_THROUGH_THIS_RELAY)
        assert row.attempts == 0  # no SMTP attempt was made
    expected = [r for r in recipients if "@" in r and r.isascii()] + [IDN_ON_THE_WIRE]
    assert plain_relay.handler.copies() == dict.fromkeys(expected, 1)
    to = next(a for a in plain_relay.handler.accepted if a.rcpt == IDN_ON_THE_WIRE)
    assert to.message()["To"].addresses[0].addr_spec == IDN_ON_THE_WIRE
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT


def test_through_a_relay_with_smtputf8_all_hundred_are_delivered(
    committed_settings: Settings,
) -> None:
    with running_relay(enable_SMTPUTF8=True) as relay:
        settings = with_relay(committed_settings, relay, batch_size=30)
        issue_id = seed.rendered_issue(settings)
        recipients = hundred_with_two_international(settings)

        campaign_id = start(settings, issue_id, ["weekly"])
        jobs.run_until_idle(settings, wait=True)

    assert set(ledger(settings, campaign_id).values()) == {DeliveryStatus.SENT}
    expected = [
        *(r for r in recipients if r not in (IDN, UTF8_AT_IDN)),
        IDN_ON_THE_WIRE,
        UTF8_AT_IDN_ON_THE_WIRE,
    ]
    assert relay.handler.copies() == dict.fromkeys(expected, 1)
    utf8 = next(a for a in relay.handler.accepted if a.rcpt == UTF8_LOCAL_PART)
    to = next(line for line in utf8.content.split(b"\r\n") if line.startswith(b"To: "))
    assert to.endswith(f"<{UTF8_LOCAL_PART}>".encode())  # a UTF-8 header (RFC 6532)


def test_resend_unsent_delivers_the_failed_address_once_the_relay_takes_it(
    committed_settings: Settings, plain_relay: Relay
) -> None:
    settings = with_relay(committed_settings, plain_relay)
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", [UTF8_LOCAL_PART, *emails("r", 3)])
    campaign_id = start(settings, issue_id, ["weekly"])
    jobs.run_until_idle(settings, wait=True)
    assert ledger(settings, campaign_id)[UTF8_LOCAL_PART] == DeliveryStatus.FAILED

    with running_relay(enable_SMTPUTF8=True) as better:
        settings = with_relay(committed_settings, better)
        with session_scope(settings) as session:
            assert service.resend_unsent(session, campaign_id, utcnow()).requeued == 1
        jobs.run_until_idle(settings, wait=True)

    assert better.handler.copies() == {UTF8_LOCAL_PART: 1}
    assert ledger(settings, campaign_id)[UTF8_LOCAL_PART] == DeliveryStatus.SENT


def test_a_campaign_whose_message_cannot_be_built_pauses_and_the_next_one_sends(
    committed_settings: Settings, plain_relay: Relay
) -> None:
    """A list named with a control character (made before names were checked) cannot give a
    List-Id; its campaign pauses with the reason, and the campaign after it is not held."""
    settings = with_relay(committed_settings, plain_relay)
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "broken", emails("b", 5))
    seed.subscribers(settings, "fine", emails("f", 5))
    broken = start(settings, issue_id, ["broken"])
    fine = start(settings, issue_id, ["fine"])
    with session_scope(settings) as session:  # as an older version let it be stored
        session.execute(
            update(MailingList).where(MailingList.name == "broken").values(name="ctl\x01list")
        )

    jobs.run_until_idle(settings, wait=True)

    assert plain_relay.handler.copies() == dict.fromkeys(emails("f", 5), 1)
    assert campaign_status(settings, fine) == CampaignStatus.SENT
    with session_scope(settings) as session:
        paused = session.get(Campaign, broken)
        assert paused is not None
        assert paused.status == CampaignStatus.PAUSED
        assert paused.status_reason is not None
        assert "the message cannot be built" in paused.status_reason
        assert "control character" in paused.status_reason
    assert set(ledger(settings, broken).values()) == {DeliveryStatus.PENDING}


def test_a_relay_that_refuses_our_login_pauses_the_campaign_without_charging_anyone(
    committed_settings: Settings,
) -> None:
    def refuse(*_args: object) -> AuthResult:
        return AuthResult(success=False, handled=False)

    with running_relay(authenticator=refuse, auth_require_tls=False) as relay:
        settings = dataclasses.replace(
            committed_settings, smtp=parse_smtp_url(f"smtp://user:wrong@127.0.0.1:{relay.port}")
        )
        issue_id = seed.rendered_issue(settings)
        seed.subscribers(settings, "weekly", emails("a", 4))
        campaign_id = start(settings, issue_id, ["weekly"])
        jobs.run_until_idle(settings, wait=True)

    assert relay.handler.copies() == {}
    assert campaign_status(settings, campaign_id) == CampaignStatus.PAUSED
    with session_scope(settings) as session:
        found = session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)).all()
        assert {(d.status, d.attempts) for d in found} == {(DeliveryStatus.PENDING, 0)}
