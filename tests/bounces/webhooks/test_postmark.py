"""Postmark specifics beyond the shared contract."""

from __future__ import annotations

import json

import pytest

from newsletter.bounces.event import BounceKind
from newsletter.bounces.sources.webhooks import postmark
from newsletter.errors import InvalidInput

from .harness import POSTMARK_CREDENTIALS, samples


@pytest.mark.parametrize(
    "authorization", ["Bearer aG9va3M6czNjcmV0LXBhNTU=", "Basic", "Basic !!!", ""]
)
def test_non_basic_or_garbled_credentials_are_refused(authorization: str) -> None:
    with pytest.raises(InvalidInput):
        postmark.verify({"Authorization": authorization}, b"{}", POSTMARK_CREDENTIALS)


def test_hard_bounce_reads_the_status_from_details() -> None:
    body = json.dumps(samples("postmark")["Bounce:HardBounce"]).encode()

    [event] = postmark.parse(body)

    assert (event.kind, event.recipient, event.status, event.source_id) == (
        BounceKind.HARD,
        "bounce@example.com",
        "5.1.1",
        "901542550",
    )


def test_record_without_record_type_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        postmark.parse(b'{"FromFull": {"Email": "from@example.org"}}')
