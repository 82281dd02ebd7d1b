"""``parse_bounce`` behaviour beyond the corpus: limits, successes, and that it never raises."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.bounces.event import BounceKind
from newsletter.bounces.parse import parse_bounce

DSN_TEMPLATE = """\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: b-abc@bounces.example.org
Subject: Delivery report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Report.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

{recipients}
--B
Content-Type: text/rfc822-headers

Message-ID: <sent-1@example.org>

--B--
"""


def dsn(*blocks: str) -> bytes:
    return DSN_TEMPLATE.format(recipients="\n".join(blocks)).encode()


def test_fifty_megabyte_message_is_refused_quickly() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\nSubject: big\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: application/pdf\n'
        b"Content-Transfer-Encoding: base64\n\n"
        + b"QUFBQUFBQUFBQUFB\n" * (50 * 1024 * 1024 // 17)
        + b"--B--\n"
    )
    started = time.process_time()  # this process's CPU: other load on the machine adds none

    events = parse_bounce(raw)

    assert time.process_time() - started < 2.0
    assert [e.kind for e in events] == [BounceKind.UNPARSEABLE]


def test_dsn_reporting_only_successes_gives_no_events() -> None:
    raw = dsn(
        "Final-Recipient: rfc822; ok@example.com\nAction: delivered\nStatus: 2.0.0\n",
        "Final-Recipient: rfc822; list@example.com\nAction: expanded\nStatus: 2.0.0\n",
    )

    assert parse_bounce(raw) == []


def test_dsn_mixing_success_and_failure_reports_only_the_failure() -> None:
    raw = dsn(
        "Final-Recipient: rfc822; ok@example.com\nAction: relayed\nStatus: 2.0.0\n",
        "Final-Recipient: rfc822; gone@example.com\nAction: failed\nStatus: 5.1.1\n",
    )

    events = parse_bounce(raw)

    assert [(e.recipient, e.kind, e.original_message_id) for e in events] == [
        ("gone@example.com", BounceKind.HARD, "<sent-1@example.org>")
    ]


def test_delayed_action_is_soft_even_with_a_permanent_looking_code() -> None:
    raw = dsn("Final-Recipient: rfc822; slow@example.com\nAction: delayed\nStatus: 5.0.0\n")

    assert [e.kind for e in parse_bounce(raw)] == [BounceKind.SOFT]


def test_delayed_rate_limit_keeps_its_policy_signal() -> None:
    raw = dsn(
        "Final-Recipient: rfc822; a@example.com\nAction: delayed\nStatus: 4.7.28\n"
        "Diagnostic-Code: smtp; 421-4.7.28 unusual rate of unsolicited mail\n"
    )

    assert [e.kind for e in parse_bounce(raw)] == [BounceKind.POLICY]


def test_failed_action_without_any_code_is_hard() -> None:
    raw = dsn("Final-Recipient: rfc822; x@example.com\nAction: failed\n")

    assert [(e.kind, e.status) for e in parse_bounce(raw)] == [(BounceKind.HARD, None)]


def test_generic_status_yields_to_the_specific_code_in_the_diagnostic() -> None:
    raw = dsn(
        "Final-Recipient: rfc822; x@example.com\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <x@example.com>: Recipient address rejected\n"
    )

    assert [(e.kind, e.status) for e in parse_bounce(raw)] == [(BounceKind.HARD, "5.1.1")]


def test_opensmtpd_error_action_counts_as_failed() -> None:
    raw = dsn("Final-Recipient: rfc822; x@example.com\nAction: error\nStatus: 5.1.1\n")

    assert [e.kind for e in parse_bounce(raw)] == [BounceKind.HARD]


def test_envelope_recipient_is_carried_lower_cased() -> None:
    raw = dsn("Final-Recipient: rfc822; X@Example.com\nAction: failed\nStatus: 5.1.1\n")

    events = parse_bounce(raw, "B-ABC@Bounces.Example.org")

    assert [(e.recipient, e.envelope_rcpt) for e in events] == [
        ("x@example.com", "b-abc@bounces.example.org")
    ]


def test_bounce_saying_auto_replied_is_not_taken_for_an_auto_reply() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        b"Auto-Submitted: auto-replied\nSubject: Mail delivery failed\n\nNothing useful here.\n"
    )

    assert [e.kind for e in parse_bounce(raw)] == [BounceKind.UNKNOWN]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    events = parse_bounce(raw)

    assert events is not None
    assert all(isinstance(e.kind, BounceKind) for e in events)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000))
def test_arbitrary_text_inside_a_report_never_raises(body: str) -> None:
    raw = dsn(body).replace(b"\r", b"")

    assert isinstance(parse_bounce(raw), list)


def test_large_non_bounce_under_the_cap_is_read_quickly() -> None:
    raw = (
        b"From: x@example.net\nSubject: hi\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\n'
        b"hello\n--B\nContent-Type: application/pdf\n"
        b"Content-Transfer-Encoding: base64\n\n" + b"QUFBQUFBQUFBQUFB\n" * 500_000 + b"--B--\n"
    )
    started = time.process_time()  # this process's CPU: other load on the machine adds none

    events = parse_bounce(raw)

    assert time.process_time() - started < 2.0
    assert [e.kind for e in events] == [BounceKind.UNKNOWN]


def test_plain_text_bounce_with_a_huge_returned_message_still_names_the_recipient() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        b"X-Failed-Recipients: gone@example.com\nSubject: Mail delivery failed\n\n"
        b"A message that you sent could not be delivered to one or more of its\n"
        b"recipients. This is a permanent error. The following address(es) failed:\n\n"
        b"  gone@example.com\n    host mx.example.com [192.0.2.1]: 550 5.1.1 User unknown\n\n"
        b"------ This is a copy of the message, including all the headers. ------\n\n"
        b"Message-Id: <sent-2@example.org>\nSubject: bulletin\n\n" + b"bulletin text\n" * 200_000
    )

    events = parse_bounce(raw)

    assert [(e.recipient, e.kind, e.status, e.original_message_id) for e in events] == [
        ("gone@example.com", BounceKind.HARD, "5.1.1", "<sent-2@example.org>")
    ]
