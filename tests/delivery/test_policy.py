"""What each relay reply does to the recipient's row and to its domain (pure: no relay)."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.delivery.models import DeliveryStatus
from newsletter.delivery.policy import DomainEffect, decide
from newsletter.delivery.verdict import Verdict
from newsletter.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RelayUnavailableError,
    TransientDeliveryError,
)

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
SCHEDULE = (60, 300, 1800)


def rcpt(code: int, enhanced: str | None, text: str) -> DeliveryError:
    kind = PermanentDeliveryError if code >= 500 else TransientDeliveryError
    return kind(f"RCPT TO: {code} {text}", code=code, enhanced_status=enhanced)


def test_a_block_list_rejection_defers_the_recipient_and_strikes_the_domain() -> None:
    error = rcpt(550, "5.7.1", "5.7.1 Service unavailable; client host blocked using a block list")

    decision = decide(error, attempts=0, schedule=SCHEDULE, now=NOW)

    assert decision.outcome.status is DeliveryStatus.DEFERRED  # never bounced for our reputation
    assert decision.outcome.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert (decision.verdict, decision.domain, decision.reported) == (
        Verdict.POLICY,
        DomainEffect.POLICY_STRIKE,
        True,
    )


def test_an_unknown_user_is_bounced_and_reported() -> None:
    decision = decide(
        rcpt(550, "5.1.1", "5.1.1 no such user"), attempts=0, schedule=SCHEDULE, now=NOW
    )
    assert (decision.outcome.status, decision.verdict, decision.reported) == (
        DeliveryStatus.BOUNCED,
        Verdict.HARD,
        True,
    )
    assert decision.reply is not None
    assert (decision.reply.code, decision.reply.enhanced_status) == (550, "5.1.1")


def test_a_full_mailbox_is_soft_retried_and_reported() -> None:
    decision = decide(
        rcpt(552, "5.2.2", "5.2.2 mailbox full"), attempts=1, schedule=SCHEDULE, now=NOW
    )
    assert (decision.outcome.status, decision.verdict, decision.reported) == (
        DeliveryStatus.DEFERRED,
        Verdict.SOFT,
        True,
    )
    assert decision.outcome.next_attempt_at == NOW + dt.timedelta(seconds=300)


def test_a_throttling_reply_charges_the_recipient_and_signals_the_domain() -> None:
    decision = decide(rcpt(451, "4.7.1", "4.7.1 slow down"), attempts=0, schedule=SCHEDULE, now=NOW)
    assert decision.outcome.status is DeliveryStatus.DEFERRED
    assert decision.outcome.counts_as_attempt
    assert decision.domain is DomainEffect.THROTTLE_SIGNAL
    assert not decision.reported


def test_421_backs_the_domain_off_without_charging_the_recipient() -> None:
    error = RelayUnavailableError("RCPT TO: 421 4.7.0 closing", code=421, enhanced_status="4.7.0")
    decision = decide(error, attempts=2, schedule=SCHEDULE, now=NOW)
    assert (decision.outcome.status, decision.domain) == (
        DeliveryStatus.DEFERRED,
        DomainEffect.BACK_OFF,
    )
    assert not decision.outcome.counts_as_attempt
    assert decision.reconnect


@pytest.mark.parametrize(
    "error",
    [
        rcpt(451, "4.3.0", "4.3.0 try later"),
        rcpt(451, "4.7.1", "4.7.1 slow down"),
        rcpt(550, "5.7.1", "5.7.1 blocked"),
        rcpt(452, "4.2.2", "4.2.2 over quota"),
    ],
)
def test_every_retried_reply_fails_after_the_last_step(error: DeliveryError) -> None:
    decision = decide(error, attempts=len(SCHEDULE), schedule=SCHEDULE, now=NOW)
    assert decision.outcome.status is DeliveryStatus.FAILED
    assert decision.outcome.counts_as_attempt


def test_a_connection_lost_after_the_data_is_possibly_sent_and_never_retried() -> None:
    error = RelayUnavailableError("connection lost", maybe_delivered=True)
    decision = decide(error, attempts=0, schedule=SCHEDULE, now=NOW)
    assert decision.outcome.status is DeliveryStatus.POSSIBLY_SENT
    assert decision.reconnect
    assert decision.domain is DomainEffect.NONE


def test_a_connection_lost_before_the_data_defers_only_the_recipient() -> None:
    decision = decide(
        RelayUnavailableError("connection lost"), attempts=0, schedule=SCHEDULE, now=NOW
    )
    assert (decision.outcome.status, decision.domain, decision.reconnect) == (
        DeliveryStatus.DEFERRED,
        DomainEffect.NONE,
        True,
    )
