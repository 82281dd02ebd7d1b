"""The one SMTP verdict: the same table for a reply at RCPT and for a status reported later."""

from __future__ import annotations

import pytest

from newsletter.bounces.classify import KIND_OF_VERDICT, classify_status
from newsletter.delivery.verdict import SmtpReply, Verdict, classify


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "verdict"),
    [
        (550, "5.1.1", "550 5.1.1 <a@example.org>: user unknown", Verdict.HARD),
        (550, "5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", Verdict.HARD),
        (550, None, "550 no such user here", Verdict.HARD),
        (554, "5.9.99", "554 5.9.99 something new", Verdict.HARD),
        (552, "5.2.2", "552 5.2.2 mailbox full", Verdict.SOFT),
        (452, "4.2.2", "452 4.2.2 over quota", Verdict.SOFT),
        (552, "5.3.4", "552 5.3.4 message too big", Verdict.SOFT),
        (
            550,
            "5.7.1",
            "550 5.7.1 Service unavailable; client host blocked using a block list",
            Verdict.POLICY,
        ),
        (550, "5.7.26", "550 5.7.26 unauthenticated mail is prohibited", Verdict.POLICY),
        (554, None, "554 Service unavailable; blocked using zen.spamhaus.org", Verdict.POLICY),
        (550, "5.5.0", "550 5.5.0 your IP is blacklisted", Verdict.POLICY),
        (451, "4.7.1", "451 4.7.1 please slow down", Verdict.THROTTLED),
        (421, "4.7.0", "421 4.7.0 too many connections, closing", Verdict.CLOSING),
        (421, None, "421 Service not available, closing transmission channel", Verdict.CLOSING),
        (451, "4.3.0", "451 4.3.0 try again later", Verdict.DEFERRED),
        (450, None, "450 mailbox busy", Verdict.DEFERRED),
        (250, "2.0.0", "250 2.0.0 Ok: queued as Q1", Verdict.ACCEPTED),
        (354, None, "354 go ahead", Verdict.UNKNOWN),
        (None, None, "connection lost", Verdict.UNKNOWN),
    ],
)
def test_a_reply_is_judged_by_its_code_and_enhanced_status(
    code: int | None, enhanced: str | None, text: str, verdict: Verdict
) -> None:
    assert classify(code, enhanced, text) is verdict
    assert SmtpReply(code, enhanced, text).verdict is verdict


def test_an_enhanced_status_of_another_class_than_the_code_is_ignored() -> None:
    assert classify(550, "4.7.1", "550 4.7.1 odd") is Verdict.HARD


@pytest.mark.parametrize(
    ("code", "enhanced", "text"),
    [
        (550, "5.1.1", "550 5.1.1 user unknown"),
        (552, "5.2.2", "552 5.2.2 mailbox full"),
        (550, "5.7.1", "550 5.7.1 blocked using a block list"),
        (451, "4.7.1", "451 4.7.1 slow down"),
        (451, "4.3.0", "451 4.3.0 later"),
    ],
)
def test_the_bounce_stage_reads_a_reported_status_the_same_way(
    code: int, enhanced: str, text: str
) -> None:
    assert classify_status(enhanced, text) is KIND_OF_VERDICT[classify(code, enhanced, text)]
