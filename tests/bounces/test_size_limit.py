"""A bounce over the size limit of the SMTP receiver is not stored, whatever its source."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.bounces import service
from newsletter.bounces.models import BounceMessage, BounceSource
from newsletter.bounces.parse import MAX_MESSAGE_BYTES
from newsletter.bounces.sources.receiver import MAX_MESSAGE_BYTES as RECEIVER_MAX_BYTES
from newsletter.errors import InvalidInput


def test_intake_refuses_a_message_over_the_limit_the_receiver_applies(session: Session) -> None:
    assert MAX_MESSAGE_BYTES == RECEIVER_MAX_BYTES == 10 * 1024 * 1024
    at_limit = b"Subject: big\r\n\r\n".ljust(MAX_MESSAGE_BYTES, b"x")

    service.record_raw(session, at_limit, source=BounceSource.FILE, envelope_rcpt=None)
    with pytest.raises(InvalidInput, match=f"over {MAX_MESSAGE_BYTES} bytes is not stored"):
        service.record_raw(session, at_limit + b"x", source=BounceSource.IMAP, envelope_rcpt=None)

    assert session.scalar(sa.select(sa.func.count()).select_from(BounceMessage)) == 1
