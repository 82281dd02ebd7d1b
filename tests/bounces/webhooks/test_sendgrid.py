"""SendGrid specifics beyond the shared contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from newsletter.bounces.event import BounceKind
from newsletter.bounces.sources.webhooks import sendgrid
from newsletter.errors import InvalidInput

from .harness import PROVIDERS, samples, sendgrid_request

# The known-answer vector from SendGrid's own @sendgrid/eventwebhook test suite.
SENDGRID_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7"
    "yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
SENDGRID_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDW"
    "YNH2j/0="
)
SENDGRID_PAYLOAD = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
SECRET = next(p.secret for p in PROVIDERS if p.name == "sendgrid")


def test_sendgrids_own_test_vector_verifies() -> None:
    headers = {
        sendgrid.SIGNATURE_HEADER: SENDGRID_SIGNATURE,
        sendgrid.TIMESTAMP_HEADER: "1588788367",
    }

    sendgrid.verify(headers, SENDGRID_PAYLOAD, SENDGRID_PUBLIC_KEY)


def test_signature_over_a_different_timestamp_is_refused() -> None:
    headers = {
        sendgrid.SIGNATURE_HEADER: SENDGRID_SIGNATURE,
        sendgrid.TIMESTAMP_HEADER: "1588788368",
    }

    with pytest.raises(InvalidInput):
        sendgrid.verify(headers, SENDGRID_PAYLOAD, SENDGRID_PUBLIC_KEY)


def test_stale_timestamp_is_refused_when_now_is_given() -> None:
    request = sendgrid_request(samples("sendgrid")["bounce:bounce"], timestamp="1762682712")
    much_later = datetime.fromtimestamp(1762682712 + 3600, tz=UTC)

    with pytest.raises(InvalidInput, match="too old"):
        sendgrid.verify(request.headers, request.body, SECRET, now=much_later)


def test_batch_keeps_only_bounce_like_events_with_ids() -> None:
    batch = [samples("sendgrid")[key] for key in ("processed", "bounce:bounce", "open")]

    events = sendgrid.parse(json.dumps(batch).encode())

    assert [(e.kind, e.recipient, e.status, e.source_id) for e in events] == [
        (BounceKind.HARD, "recipient@example.com", "5.1.1", "lC0Rc-FuQmKbnxCWxX1jRQ")
    ]
    assert events[0].original_message_id == "<wrfRRvF7Q0GgwUo2CvDmEA@ismtpd0006p1sjc2.sendgrid.net>"


def test_blocked_mailbox_full_follows_its_status_code() -> None:
    blocked = dict(
        samples("sendgrid")["bounce:blocked"],
        status="5.2.2",
        reason="552 5.2.2 The email account that you tried to reach is over quota and inactive.",
    )

    [event] = sendgrid.parse(json.dumps([blocked]).encode())

    assert (event.kind, event.status) == (BounceKind.SOFT, "5.2.2")


def test_event_without_a_name_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        sendgrid.parse(b'[{"email": "a@example.com"}]')
