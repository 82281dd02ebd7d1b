"""Postmark bounce and spam-complaint webhooks, authenticated with HTTP Basic credentials.

Postmark does not sign webhooks; the URL is configured with ``https://user:password@...``
and Postmark sends them as HTTP Basic auth. ``verify`` compares the Authorization header
with the configured ``user:password`` in constant time. One JSON object per request.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from newsletter.bounces.classify import extract_status, refine_kind
from newsletter.bounces.event import (
    BounceEvent,
    BounceKind,
    normalise_address,
    normalise_message_id,
)
from newsletter.bounces.sources.webhooks.payload import (
    header,
    load_json,
    optional_str,
    require_object,
)
from newsletter.errors import InvalidInput

# RecordType "Bounce" is split by its "Type" (the bounce type names of Postmark's API);
# the other RecordTypes are listed as themselves.
EVENT_KINDS: dict[str, BounceKind | None] = {
    "Bounce:HardBounce": BounceKind.HARD,
    "Bounce:BadEmailAddress": BounceKind.HARD,
    "Bounce:SoftBounce": BounceKind.SOFT,
    "Bounce:Transient": BounceKind.SOFT,
    "Bounce:DnsError": BounceKind.SOFT,
    "Bounce:SpamNotification": BounceKind.POLICY,  # the receiver filtered us as spam
    "Bounce:VirusNotification": BounceKind.POLICY,
    "Bounce:Blocked": BounceKind.POLICY,
    "Bounce:DMARCPolicy": BounceKind.POLICY,
    "Bounce:AutoResponder": BounceKind.AUTO_REPLY,
    "Bounce:ChallengeVerification": BounceKind.AUTO_REPLY,
    "Bounce:SpamComplaint": BounceKind.COMPLAINT,
    "Bounce:Unknown": BounceKind.UNKNOWN,
    "Bounce:AddressChange": BounceKind.UNKNOWN,
    "Bounce:OpenRelayTest": BounceKind.UNKNOWN,
    "Bounce:ManuallyDeactivated": None,  # our own action in Postmark's UI, not the receiver's
    "Bounce:Unsubscribe": None,
    "Bounce:Subscribe": None,
    "Bounce:Unconfirmed": None,
    "Bounce:SMTPApiError": None,
    "Bounce:InboundError": None,
    "Bounce:TemplateRenderingFailed": None,
    "SpamComplaint": BounceKind.COMPLAINT,
    "Delivery": None,
    "Open": None,
    "Click": None,
    "SubscriptionChange": None,
}


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """``secret`` is ``user:password`` as configured in the Postmark webhook URL."""
    authorization = header(headers, "Authorization") or ""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise InvalidInput("Postmark webhook without HTTP Basic credentials")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("Postmark webhook credentials are not base64") from exc
    if not hmac.compare_digest(given, secret.encode()):
        raise InvalidInput("Postmark webhook credentials do not match")


def parse(body: bytes) -> list[BounceEvent]:
    """At most one event: Postmark posts one record per request."""
    record = require_object(load_json(body, "Postmark"), "Postmark webhook body")
    record_type = optional_str(record.get("RecordType"))
    if record_type is None:
        raise InvalidInput("Postmark webhook without a RecordType")
    name = record_type
    if record_type == "Bounce":
        name = f"Bounce:{optional_str(record.get('Type')) or 'Unknown'}"
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return []
    return [_event(kind, record)]


def _event(kind: BounceKind, record: dict[str, Any]) -> BounceEvent:
    diagnostic = optional_str(record.get("Details")) or optional_str(record.get("Description"))
    status = extract_status(diagnostic) if kind in (BounceKind.HARD, BounceKind.SOFT) else None
    return BounceEvent(
        kind=refine_kind(kind, status, diagnostic),
        recipient=normalise_address(
            optional_str(record.get("Email")) or optional_str(record.get("Recipient"))
        ),
        status=status,
        diagnostic=diagnostic,
        envelope_rcpt=None,
        # Postmark's MessageID is its own id, not the Message-ID header: keep it for lookup
        # in the send-log, where the delivery worker stores the provider id next to ours.
        original_message_id=normalise_message_id(optional_str(record.get("MessageID"))),
        classifier="postmark",
        source_id=optional_str(record.get("ID")),
    )
