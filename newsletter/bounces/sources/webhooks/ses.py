"""Amazon SES notifications delivered by SNS: verify the SNS signature, map SES events.

SNS signs a canonical string of the message's fields (SignatureVersion 1: SHA1withRSA,
2: SHA256withRSA) with the key of the X.509 certificate at ``SigningCertURL``. Fetching
that certificate is I/O, so the caller passes ``fetch_certificate(url) -> PEM bytes``; we
only ever ask it for an https URL on ``sns.<region>.amazonaws.com``, and that host check is
what makes the certificate trustworthy. SES notifications (``notificationType``) and
event publishing (``eventType``) are both read.

Anyone can create an SNS topic, and its messages are validly signed by AWS: pass
``topic_arns`` to accept only our own topics.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.bounces.classify import extract_status, refine_kind
from newsletter.bounces.event import (
    BounceEvent,
    BounceKind,
    normalise_address,
    normalise_message_id,
)
from newsletter.bounces.sources.webhooks.payload import load_json, optional_str, require_object
from newsletter.errors import InvalidInput

# SES "notificationType"/"eventType", split by "bounceType:bounceSubType" for bounces.
EVENT_KINDS: dict[str, BounceKind | None] = {
    "Bounce:Permanent:General": BounceKind.HARD,
    "Bounce:Permanent:NoEmail": BounceKind.HARD,
    "Bounce:Permanent:Suppressed": BounceKind.HARD,
    "Bounce:Permanent:OnAccountSuppressionList": BounceKind.HARD,
    "Bounce:Transient:General": BounceKind.SOFT,
    "Bounce:Transient:MailboxFull": BounceKind.SOFT,
    "Bounce:Transient:MessageTooLarge": BounceKind.SOFT,
    "Bounce:Transient:ContentRejected": BounceKind.POLICY,
    "Bounce:Transient:AttachmentRejected": BounceKind.POLICY,
    "Bounce:Undetermined:Undetermined": BounceKind.UNKNOWN,
    "Complaint": BounceKind.COMPLAINT,
    "DeliveryDelay": BounceKind.SOFT,
    "Reject": BounceKind.POLICY,  # SES refused our message (virus): content, not the address
    "Delivery": None,
    "Send": None,
    "Open": None,
    "Click": None,
    "Rendering Failure": None,
    "Subscription": None,
}
SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_HOST = re.compile(r"^sns\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com$")
# Fields signed, in order, per SNS message type (absent optional fields are skipped).
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip


def verify(
    headers: Mapping[str, str],
    body: bytes,
    fetch_certificate: Callable[[str], bytes],
    *,
    topic_arns: Collection[str] | None = None,
) -> None:
    """Check the SNS signature over the canonical string, with the certificate it names."""
    message = require_object(load_json(body, "SNS"), "SNS message")
    message_type = optional_str(message.get("Type"))
    if message_type not in _SIGNED_FIELDS:
        raise InvalidInput(f"SNS message of unknown Type {message_type!r}")
    if topic_arns is not None and message.get("TopicArn") not in topic_arns:
        raise InvalidInput("SNS message from a topic that is not ours")
    algorithm = SIGNATURE_HASHES.get(optional_str(message.get("SignatureVersion")) or "")
    if algorithm is None:
        raise InvalidInput("SNS message with an unknown SignatureVersion")
    cert_url = optional_str(message.get("SigningCertURL")) or ""
    _check_cert_url(cert_url)
    try:
        signature = base64.b64decode(optional_str(message.get("Signature")) or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("SNS signature is not base64") from exc
    public_key = _certificate_key(fetch_certificate(cert_url))
    try:
        public_key.verify(
            signature, canonical_string(message, message_type), padding.PKCS1v15(), algorithm()
        )
    except InvalidSignature as exc:
        raise InvalidInput("SNS signature does not match") from exc


def canonical_string(message: Mapping[str, Any], message_type: str) -> bytes:
    """``Name\\nvalue\\n`` for each signed field present, in SNS's fixed order."""
    lines: list[str] = []
    for name in _SIGNED_FIELDS[message_type]:
        value = message.get(name)
        if value is None:
            continue
        lines.extend((name, str(value)))
    return ("\n".join(lines) + "\n").encode()


def parse(body: bytes) -> list[BounceEvent]:
    """Events for one SNS Notification carrying one SES notification or event."""
    message = require_object(load_json(body, "SNS"), "SNS message")
    if message.get("Type") != "Notification":
        return []  # subscription handshakes are for the web layer, not bounces
    raw = message.get("Message")
    if not isinstance(raw, str):
        raise InvalidInput("SNS Notification without a Message string")
    ses = require_object(load_json(raw.encode(), "SES"), "SES notification")
    name = optional_str(ses.get("notificationType")) or optional_str(ses.get("eventType"))
    if name is None:
        raise InvalidInput("SES notification without notificationType or eventType")
    raw_mail = ses.get("mail")
    mail: dict[str, Any] = raw_mail if isinstance(raw_mail, dict) else {}
    source_id = optional_str(message.get("MessageId"))
    message_id = _message_id(mail)
    if name == "Bounce":
        return _bounce_events(ses, source_id, message_id)
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return []
    return _other_events(name, kind, ses, mail, source_id, message_id)


def _bounce_events(
    ses: dict[str, Any], source_id: str | None, message_id: str | None
) -> list[BounceEvent]:
    bounce = require_object(ses.get("bounce"), "SES 'bounce'")
    bounce_type = optional_str(bounce.get("bounceType")) or "Undetermined"
    sub_type = optional_str(bounce.get("bounceSubType")) or "Undetermined"
    kind = EVENT_KINDS.get(f"Bounce:{bounce_type}:{sub_type}")
    if kind is None:
        kind = {"Permanent": BounceKind.HARD, "Transient": BounceKind.SOFT}.get(
            bounce_type, BounceKind.UNKNOWN
        )
    recipients = bounce.get("bouncedRecipients")
    if not isinstance(recipients, list):
        raise InvalidInput("SES bounce without bouncedRecipients")
    reporting_mta = optional_str(bounce.get("reportingMTA"))
    events = []
    for recipient in recipients:
        entry = recipient if isinstance(recipient, dict) else {}
        diagnostic = optional_str(entry.get("diagnosticCode"))
        status = optional_str(entry.get("status")) or extract_status(diagnostic)
        events.append(
            BounceEvent(
                kind=refine_kind(kind, status, diagnostic),
                recipient=normalise_address(optional_str(entry.get("emailAddress"))),
                status=status,
                diagnostic=diagnostic,
                envelope_rcpt=None,
                original_message_id=message_id,
                classifier="ses",
                source_id=source_id,
                reporting_mta=reporting_mta.split(";", 1)[-1].strip() if reporting_mta else None,
            )
        )
    return events


def _other_events(
    name: str,
    kind: BounceKind,
    ses: dict[str, Any],
    mail: dict[str, Any],
    source_id: str | None,
    message_id: str | None,
) -> list[BounceEvent]:
    detail_key = {"Complaint": "complaint", "DeliveryDelay": "deliveryDelay", "Reject": "reject"}
    detail = ses.get(detail_key.get(name, ""))
    detail = detail if isinstance(detail, dict) else {}
    listed = detail.get("complainedRecipients") or detail.get("delayedRecipients")
    if isinstance(listed, list):
        addresses = [optional_str(r.get("emailAddress")) for r in listed if isinstance(r, dict)]
    else:
        destination = mail.get("destination")
        addresses = [optional_str(a) for a in destination] if isinstance(destination, list) else []
    diagnostic = (
        optional_str(detail.get("complaintFeedbackType"))
        or optional_str(detail.get("delayType"))
        or optional_str(detail.get("reason"))
    )
    return [
        BounceEvent(
            kind=kind,
            recipient=normalise_address(address),
            status=None,
            diagnostic=diagnostic,
            envelope_rcpt=None,
            original_message_id=message_id,
            classifier="ses",
            source_id=source_id,
        )
        for address in addresses or [None]
    ]


def _message_id(mail: dict[str, Any]) -> str | None:
    """Our Message-ID header when SES echoes it, else SES's own message id."""
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and optional_str(common.get("messageId")):
        return normalise_message_id(optional_str(common.get("messageId")))
    return normalise_message_id(optional_str(mail.get("messageId")))


def _check_cert_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not CERT_HOST.match(parts.hostname or ""):
        raise InvalidInput(f"SNS SigningCertURL {url!r} is not https on sns.<region>.amazonaws.com")
    if not parts.path.endswith(".pem") or parts.port not in (None, 443):
        raise InvalidInput(f"SNS SigningCertURL {url!r} is not an SNS certificate")


def _certificate_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InvalidInput("SNS signing certificate is not a PEM certificate") from exc
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidInput("SNS signing certificate does not hold an RSA key")
    return key
