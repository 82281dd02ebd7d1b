"""Mailgun specifics beyond the shared contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from newsletter.bounces.event import BounceKind
from newsletter.bounces.sources.webhooks import mailgun
from newsletter.errors import InvalidInput

from .harness import MAILGUN_KEY, mailgun_request, samples


def test_permanent_failure_with_a_policy_code_is_policy() -> None:
    failed = samples("mailgun")["failed:permanent"]
    failed = dict(
        failed, **{"delivery-status": {"code": 550, "message": "5.7.1 Blocked by policy"}}
    )

    [event] = mailgun.parse(mailgun_request(failed).body)

    assert (event.kind, event.status) == (BounceKind.POLICY, "5.7.1")


def test_permanent_failure_carries_status_message_id_and_event_id() -> None:
    [event] = mailgun.parse(mailgun_request(samples("mailgun")["failed:permanent"]).body)

    assert event.status == "5.1.1"
    assert event.original_message_id == "<20180812214658.1.0DF563D0B3597700@example.org>"
    assert event.source_id == "hTWCTD81RtiDN-lMPbO_Ag"
    assert event.reporting_mta == "aspmx.l.example.org"


def test_stale_signature_is_refused_when_now_is_given() -> None:
    request = mailgun_request(samples("mailgun")["delivered"], timestamp="1534110422")
    later = datetime.fromtimestamp(1534110422 + 600, tz=UTC)

    with pytest.raises(InvalidInput, match="too old"):
        mailgun.verify(request.headers, request.body, MAILGUN_KEY, now=later)


def test_body_without_event_data_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        mailgun.parse(json.dumps({"signature": {}}).encode())
