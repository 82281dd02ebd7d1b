"""SendGrid Event Webhook: verify the ECDSA signature, turn bounce-like events into events.

Signed Event Webhook: SendGrid signs ``timestamp + raw body`` with ECDSA P-256 / SHA-256 and
sends the base64 DER signature in ``X-Twilio-Email-Event-Webhook-Signature`` and the
timestamp in ``X-Twilio-Email-Event-Webhook-Timestamp``; the verification key from Mail
Settings is base64 DER SubjectPublicKeyInfo (PEM is accepted too). The body is a JSON array.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from newsletter.bounces.classify import classify_status, extract_status, refine_kind
from newsletter.bounces.event import (
    BounceEvent,
    BounceKind,
    normalise_address,
    normalise_message_id,
)
from newsletter.bounces.sources.webhooks.payload import header, load_json, optional_str
from newsletter.errors import InvalidInput

# "event" (or "event:type" / "event:reason" where SendGrid splits one event name) -> kind.
EVENT_KINDS: dict[str, BounceKind | None] = {
    "bounce:bounce": BounceKind.HARD,
    "bounce:blocked": BounceKind.POLICY,  # the receiver refused us (reputation), not the address
    "deferred": BounceKind.SOFT,
    "spamreport": BounceKind.COMPLAINT,
    "dropped:bounced address": BounceKind.HARD,
    "dropped:invalid": BounceKind.HARD,
    "dropped:spam reporting address": BounceKind.COMPLAINT,
    "dropped:unsubscribed address": None,
    "processed": None,
    "delivered": None,
    "open": None,
    "click": None,
    "unsubscribe": None,
    "group_unsubscribe": None,
    "group_resubscribe": None,
}
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_AGE_SECONDS = 300  # replay window when the caller passes ``now``


def verify(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime | None = None
) -> None:
    """Check the ECDSA signature; ``secret`` is the verification (public) key."""
    signature_b64 = header(headers, SIGNATURE_HEADER)
    timestamp = header(headers, TIMESTAMP_HEADER)
    if not signature_b64 or not timestamp:
        raise InvalidInput("SendGrid webhook without signature headers")
    key = _public_key(secret)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise InvalidInput("SendGrid webhook signature does not match") from exc
    if now is not None:
        _check_fresh(timestamp, now)


def parse(body: bytes) -> list[BounceEvent]:
    """Events for the bounce-like entries of a SendGrid event batch."""
    raw_events = load_json(body, "SendGrid")
    if not isinstance(raw_events, list):
        raise InvalidInput("SendGrid webhook body is not a JSON array")
    events: list[BounceEvent] = []
    for raw_event in raw_events:
        if not isinstance(raw_event, dict) or not isinstance(raw_event.get("event"), str):
            raise InvalidInput("SendGrid event without an 'event' name")
        event = _event(raw_event)
        if event is not None:
            events.append(event)
    return events


def _event(raw_event: dict[str, Any]) -> BounceEvent | None:
    name = raw_event["event"].lower()
    if name == "bounce":
        name = f"bounce:{(optional_str(raw_event.get('type')) or 'bounce').lower()}"
    elif name == "dropped":
        name = f"dropped:{(optional_str(raw_event.get('reason')) or '').lower()}"
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return None  # not a bounce, or a SendGrid event this module does not know yet
    diagnostic = optional_str(raw_event.get("reason")) or optional_str(raw_event.get("response"))
    status = optional_str(raw_event.get("status")) or extract_status(diagnostic)
    if name == "bounce:blocked" and classify_status(status, diagnostic) is not BounceKind.UNKNOWN:
        # SendGrid files some plain recipient failures (Gmail's 552 5.2.2 over quota) under
        # "blocked"; when the receiver gave a code, the code is the better witness.
        kind = classify_status(status, diagnostic)
    return BounceEvent(
        kind=refine_kind(kind, status, diagnostic),
        recipient=normalise_address(optional_str(raw_event.get("email"))),
        status=status,
        diagnostic=diagnostic,
        envelope_rcpt=None,
        original_message_id=normalise_message_id(optional_str(raw_event.get("smtp-id"))),
        classifier="sendgrid",
        source_id=optional_str(raw_event.get("sg_event_id")),
    )


def _public_key(secret: str) -> ec.EllipticCurvePublicKey:
    try:
        if "BEGIN PUBLIC KEY" in secret:
            key = load_pem_public_key(secret.encode())
        else:
            key = load_der_public_key(base64.b64decode(secret, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise InvalidInput("SendGrid verification key is not a public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInput("SendGrid verification key is not an elliptic-curve key")
    return key


def _check_fresh(timestamp: str, now: datetime) -> None:
    try:
        signed_at = int(timestamp)
    except ValueError as exc:
        raise InvalidInput("SendGrid webhook timestamp is not a number") from exc
    if abs(now.timestamp() - signed_at) > MAX_AGE_SECONDS:
        raise InvalidInput("SendGrid webhook timestamp is too old or in the future")
