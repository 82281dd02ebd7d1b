"""Read RFC 3464 delivery status notifications (BNC-02), including RFC 6533 global ones.

``parse_dsn`` looks for a ``message/delivery-status`` or ``message/global-delivery-status``
part, normally inside ``multipart/report; report-type=delivery-status`` (RFC 6522), and gives
one event per failed or delayed recipient. Recipients whose Action is delivered, relayed or
expanded are successes and give no event. flufl.bounce reads DSNs too, but it ignores Status
and returns no diagnostic (BNC-08 a, b), hence our own reader.
"""

from __future__ import annotations

from email.message import Message

from newsletter.bounces.classify import best_status, classify_status
from newsletter.bounces.event import BounceEvent, BounceKind, normalise_address
from newsletter.bounces.mime import report_blocks, returned_message_id, walk

STATUS_PART_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient")


def find_status_part(msg: Message) -> Message | None:
    """The first delivery-status part of the message, if it has one."""
    for part in walk(msg):
        if part.get_content_type() in STATUS_PART_TYPES:
            return part
    return None


def parse_dsn(msg: Message, envelope_rcpt: str | None) -> list[BounceEvent] | None:
    """Events for every failed or delayed recipient; None when this is not a readable DSN.

    An empty list means a real DSN that reports only successes.
    """
    part = find_status_part(msg)
    if part is None:
        return None
    blocks = report_blocks(part)
    reporting_mta: str | None = None
    recipients: list[dict[str, str]] = []
    for block in blocks:
        fields = {name.lower(): value for name, value in block}
        if "reporting-mta" in fields and reporting_mta is None:
            reporting_mta = _strip_type(fields["reporting-mta"])
        # Some MTAs put the first recipient in the per-message block: accept it anywhere.
        if any(name in fields for name in _RECIPIENT_FIELDS):
            recipients.append(fields)
    if not recipients:
        return None
    message_id = returned_message_id(msg)
    events: list[BounceEvent] = []
    for fields in recipients:
        raw_action = (fields.get("action") or "").strip().lower()
        action = raw_action.split()[0] if raw_action else "failed"
        if action in SUCCESS_ACTIONS:
            continue
        diagnostic = fields.get("diagnostic-code")
        status = best_status(fields.get("status"), diagnostic)
        events.append(
            BounceEvent(
                kind=_kind_for(action, status, diagnostic),
                recipient=normalise_address(fields.get("final-recipient"))
                or normalise_address(fields.get("original-recipient")),
                status=status,
                diagnostic=diagnostic,
                envelope_rcpt=envelope_rcpt,
                original_message_id=message_id,
                classifier="dsn",
                reporting_mta=reporting_mta,
            )
        )
    return events


def _kind_for(action: str, status: str | None, diagnostic: str | None) -> BounceKind:
    kind = classify_status(status, diagnostic)
    if action == "delayed":
        # The MTA is still trying: never suppress on a delay, but keep a 4.7.x policy signal.
        return BounceKind.POLICY if kind is BounceKind.POLICY else BounceKind.SOFT
    if kind is BounceKind.UNKNOWN:
        # "failed" (or opensmtpd's "error") with no usable code is still a permanent failure.
        return BounceKind.HARD
    return kind


def _strip_type(value: str) -> str:
    """``dns; mx.example.com`` -> ``mx.example.com``."""
    return value.split(";", 1)[-1].strip()
