"""A bounce over the size limit of the SMTP receiver is not stored, whatever its source; what
is stored of one is the same on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.bounces import intake
from newsletter.bounces.event import BounceSource
from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.bounces.parse import MAX_MESSAGE_BYTES
from newsletter.bounces.sources.receiver import MAX_MESSAGE_BYTES as RECEIVER_MAX_BYTES
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.errors import InvalidInput
from tests.conftest import Run


def test_intake_refuses_a_message_over_the_limit_the_receiver_applies(session: Session) -> None:
    assert MAX_MESSAGE_BYTES == RECEIVER_MAX_BYTES == 10 * 1024 * 1024
    at_limit = b"Subject: big\r\n\r\n".ljust(MAX_MESSAGE_BYTES, b"x")

    intake.record_raw(session, at_limit, source=BounceSource.FILE, envelope_rcpt=None)
    with pytest.raises(InvalidInput, match=f"over {MAX_MESSAGE_BYTES} bytes is not stored"):
        intake.record_raw(session, at_limit + b"x", source=BounceSource.IMAP, envelope_rcpt=None)

    assert session.scalar(sa.select(sa.func.count()).select_from(BounceMessage)) == 1


def test_a_report_with_control_characters_is_stored_alike_on_both_databases(
    run_cli: Run, committed_settings: Settings
) -> None:
    raw = (
        b"Delivered-To: bounces\x00@news.example.org\r\n"
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: rfc822; vic\x00tim@example.org\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 no\x00 such\x1b user\r\n\r\n--B--\r\n"
    )

    result = run_cli("bounces", "process", "-", "--json", stdin=raw)

    assert result.exit_code == 0, result.stderr
    with session_scope(committed_settings) as session:
        message = session.scalars(sa.select(BounceMessage)).one()
        event = session.scalars(sa.select(BounceEventRecord)).one()
        assert message.raw == raw  # the original is kept as received
        assert message.envelope_rcpt is None  # "bounces\x00@…" is no address
        assert (event.recipient, event.diagnostic) == (None, "smtp; 550 no such user")
