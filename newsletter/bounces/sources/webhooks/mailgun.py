"""Mailgun webhooks (the 2018+ JSON format): verify the HMAC, map failed/complained events.

The body is ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``;
``signature`` is hex HMAC-SHA256 of ``timestamp + token`` under the webhook signing key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from newsletter.bounces.classify import extract_status, refine_kind
from newsletter.bounces.event import (
    BounceEvent,
    BounceKind,
    normalise_address,
    normalise_message_id,
)
from newsletter.bounces.sources.webhooks.payload import load_json, optional_str, require_object
from newsletter.errors import InvalidInput

# "event" (or "failed:<severity>") -> kind.
EVENT_KINDS: dict[str, BounceKind | None] = {
    "failed:permanent": BounceKind.HARD,
    "failed:temporary": BounceKind.SOFT,
    "complained": BounceKind.COMPLAINT,
    "accepted": None,
    "delivered": None,
    "opened": None,
    "clicked": None,
    "unsubscribed": None,
    "stored": None,
}
MAX_AGE_SECONDS = 300  # replay window when the caller passes ``now``


def verify(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime | None = None
) -> None:
    """Check the HMAC in the body's ``signature`` object; ``headers`` carry nothing here."""
    document = require_object(load_json(body, "Mailgun"), "Mailgun webhook body")
    signature = document.get("signature")
    if not isinstance(signature, dict):
        raise InvalidInput("Mailgun webhook without a signature object")
    timestamp = optional_str(signature.get("timestamp"))
    token = optional_str(signature.get("token"))
    given = optional_str(signature.get("signature"))
    if not (timestamp and token and given):
        raise InvalidInput("Mailgun webhook signature is incomplete")
    expected = hmac.new(secret.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise InvalidInput("Mailgun webhook signature does not match")
    if now is not None:
        try:
            signed_at = float(timestamp)
        except ValueError as exc:
            raise InvalidInput("Mailgun webhook timestamp is not a number") from exc
        if abs(now.timestamp() - signed_at) > MAX_AGE_SECONDS:
            raise InvalidInput("Mailgun webhook timestamp is too old or in the future")


def parse(body: bytes) -> list[BounceEvent]:
    """At most one event: Mailgun posts one event per request."""
    document = require_object(load_json(body, "Mailgun"), "Mailgun webhook body")
    data = require_object(document.get("event-data"), "Mailgun 'event-data'")
    name = optional_str(data.get("event"))
    if name is None:
        raise InvalidInput("Mailgun event without an 'event' name")
    name = name.lower()
    if name == "failed":
        name = f"failed:{(optional_str(data.get('severity')) or 'permanent').lower()}"
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return []
    return [_event(kind, data)]


def _event(kind: BounceKind, data: dict[str, Any]) -> BounceEvent:
    delivery = data.get("delivery-status")
    delivery = delivery if isinstance(delivery, dict) else {}
    code = optional_str(delivery.get("code"))
    message = optional_str(delivery.get("message")) or optional_str(delivery.get("description"))
    diagnostic = " ".join(part for part in (code, message) if part) or None
    status = extract_status(diagnostic) if kind is not BounceKind.COMPLAINT else None
    message_headers = data.get("message")
    message_headers = message_headers.get("headers") if isinstance(message_headers, dict) else {}
    message_id = message_headers.get("message-id") if isinstance(message_headers, dict) else None
    return BounceEvent(
        kind=refine_kind(kind, status, diagnostic),
        recipient=normalise_address(optional_str(data.get("recipient"))),
        status=status,
        diagnostic=diagnostic,
        envelope_rcpt=None,
        original_message_id=normalise_message_id(optional_str(message_id)),
        classifier="mailgun",
        source_id=optional_str(data.get("id")),
        reporting_mta=optional_str(delivery.get("mx-host")),
    )
