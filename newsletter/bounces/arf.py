"""Read RFC 5965 abuse reports (ARF, BNC-07): a recipient marked our mail as spam.

The report is ``multipart/report; report-type=feedback-report`` whose second part is
``message/feedback-report``. Mailbox providers often redact ``Original-Rcpt-To``; then the
event has no recipient and the service finds the subscriber through ``original_message_id``
(the send-log) or the VERP ``envelope_rcpt``.
"""

from __future__ import annotations

from email.message import Message

from newsletter.bounces.event import BounceEvent, BounceKind, normalise_address
from newsletter.bounces.mime import report_blocks, returned_message_id, walk

# Feedback-Type values (RFC 5965 §7.3, RFC 6430). "not-spam" is the opposite of a complaint.
FEEDBACK_TYPES: dict[str, BounceKind] = {
    "abuse": BounceKind.COMPLAINT,
    "fraud": BounceKind.COMPLAINT,
    "virus": BounceKind.COMPLAINT,
    "other": BounceKind.COMPLAINT,
    "not-spam": BounceKind.UNKNOWN,
}


def find_feedback_part(msg: Message) -> Message | None:
    """The ``message/feedback-report`` part, if the message has one."""
    for part in walk(msg):
        if part.get_content_type() == "message/feedback-report":
            return part
    return None


def parse_arf(msg: Message, envelope_rcpt: str | None) -> list[BounceEvent] | None:
    """One event per reported recipient (one with no recipient when redacted); None if not ARF."""
    part = find_feedback_part(msg)
    if part is None:
        return None
    fields: list[tuple[str, str]] = [pair for block in report_blocks(part) for pair in block]
    first = {name.lower(): value for name, value in reversed(fields)}
    feedback_type = (first.get("feedback-type") or "abuse").strip().lower()
    kind = FEEDBACK_TYPES.get(feedback_type, BounceKind.COMPLAINT)
    diagnostic = f"feedback-type={feedback_type}"
    if first.get("user-agent"):
        diagnostic += f"; user-agent={first['user-agent']}"
    reporting_mta = first.get("reporting-mta")
    message_id = returned_message_id(msg)
    recipients = [
        normalise_address(value) for name, value in fields if name.lower() == "original-rcpt-to"
    ]
    found: list[str | None] = [address for address in recipients if address is not None]
    if not found:
        found = [None]  # redacted: the service resolves the subscriber by Message-ID or VERP
    return [
        BounceEvent(
            kind=kind,
            recipient=address,
            status=None,
            diagnostic=diagnostic,
            envelope_rcpt=envelope_rcpt,
            original_message_id=message_id,
            classifier="arf",
            reporting_mta=reporting_mta.split(";", 1)[-1].strip() if reporting_mta else None,
        )
        for address in dict.fromkeys(found)
    ]
