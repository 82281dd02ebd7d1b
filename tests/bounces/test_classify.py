"""BNC-03 classification table, status extraction and synchronous SMTP rejections (BNC-05)."""

from __future__ import annotations

import pytest

from newsletter.bounces.classify import classify_status, event_from_smtp_reply, extract_status
from newsletter.bounces.event import BounceKind
from newsletter.delivery.verdict import SmtpReply

HARD, SOFT, POLICY = BounceKind.HARD, BounceKind.SOFT, BounceKind.POLICY


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.1.1", "550 5.1.1 bad mailbox", HARD),
        ("5.1.2", None, HARD),
        ("5.1.3", None, HARD),
        ("5.1.6", None, HARD),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", HARD),
        ("5.2.1", None, HARD),
        ("5.9.99", None, HARD),
        ("4.2.2", None, SOFT),
        ("4.4.7", None, SOFT),
        ("4.9.99", None, SOFT),
        ("5.2.2", "552 5.2.2 mailbox full", SOFT),
        ("5.2.3", None, SOFT),
        ("5.3.4", None, SOFT),
        ("5.7.1", None, POLICY),
        ("5.7.26", None, POLICY),
        ("5.7.515", None, POLICY),
        ("4.7.0", "421 4.7.0 try again later", POLICY),
        ("4.7.28", None, POLICY),
        ("5.0.0", "554 Service unavailable; blocked using zen.spamhaus.org", POLICY),
        ("5.5.0", "550 5.5.0 your IP is blacklisted", POLICY),
        (None, "550 Sender reputation too low", POLICY),
        ("5.0.0", "550 mailbox unavailable", HARD),
        ("5.1.1", "550 5.1.1 user unknown (listed as invalid)", HARD),
        ("5.0.0", "550 user not listed in Domino Directory", HARD),
        ("2.0.0", None, BounceKind.UNKNOWN),
        (None, None, BounceKind.UNKNOWN),
    ],
)
def test_status_is_classified_per_the_policy_table(
    status: str | None, diagnostic: str | None, kind: BounceKind
) -> None:
    assert classify_status(status, diagnostic) is kind


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("550 5.1.1 <x@example.com>: Recipient address rejected", "5.1.1"),
        ("550-5.1.1 The email account that you tried to reach does not exist", "5.1.1"),
        ("550 550 5.1.1 user unknown (UserSearch)", "5.1.1"),
        ("remote host 192.0.2.32 said: 550 Unknown user. (#5.5.0)", "5.5.0"),
        ("550 Requested action not taken: mailbox unavailable", "5.0.0"),
        ("421 Service not available, closing transmission channel", "4.0.0"),
        ("host 5.6.7.8 refused to talk to me", None),
        ("", None),
        (None, None),
    ],
)
def test_status_is_extracted_from_reply_text_with_basic_code_fallback(
    text: str | None, status: str | None
) -> None:
    assert extract_status(text) == status


def test_synchronous_rejection_becomes_an_smtp_event() -> None:
    event = event_from_smtp_reply(
        "Jane@Example.COM", SmtpReply(550, "5.1.1", "550 5.1.1 <jane@example.com>: user unknown")
    )

    assert event.kind is HARD
    assert event.recipient == "jane@example.com"
    assert event.status == "5.1.1"
    assert event.classifier == "smtp"
    assert event.diagnostic == "smtp; 550 5.1.1 <jane@example.com>: user unknown"


def test_synchronous_mailbox_full_deferral_is_soft() -> None:
    event = event_from_smtp_reply(
        "b@example.com",
        SmtpReply(
            452, "4.2.2", "452 4.2.2 The email account that you tried to reach is over quota"
        ),
    )

    assert event.kind is SOFT
    assert event.status == "4.2.2"


def test_synchronous_reply_without_enhanced_code_keeps_its_class() -> None:
    event = event_from_smtp_reply(
        "c@example.com",
        SmtpReply(554, None, "554 delivery error: dd This user doesn't have a yahoo.com account"),
    )

    assert (event.kind, event.status) == (HARD, "5.0.0")
