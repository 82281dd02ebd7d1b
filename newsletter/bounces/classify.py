"""Turn an RFC 3463 status and a diagnostic text into a ``BounceKind`` (BNC-03, BNC-05).

The classification itself is the delivery stage's ``verdict.classify``, shared with the send
loop so that a reply means the same thing whether the relay gave it at RCPT or a DSN reports it
hours later. This module reads the status out of free text (DSN diagnostics, provider
messages) and maps each ``Verdict`` to the bounce kind the policy acts on: a 4.x.x reported in
a DSN is a soft bounce, a 4.7.x one a policy signal.
"""

from __future__ import annotations

import re

from newsletter.bounces.event import BounceEvent, BounceKind, normalise_address
from newsletter.delivery.verdict import SmtpReply, Verdict, classify, effective_status

KIND_OF_VERDICT: dict[Verdict, BounceKind] = {
    Verdict.HARD: BounceKind.HARD,
    Verdict.SOFT: BounceKind.SOFT,
    Verdict.DEFERRED: BounceKind.SOFT,
    Verdict.CLOSING: BounceKind.SOFT,
    Verdict.POLICY: BounceKind.POLICY,
    Verdict.THROTTLED: BounceKind.POLICY,
    Verdict.ACCEPTED: BounceKind.UNKNOWN,  # a success is not a bounce
    Verdict.UNKNOWN: BounceKind.UNKNOWN,
}
# "550 5.1.1" / "550-5.1.1" : an enhanced code right after a basic code of the same class.
_REPLY_AND_ENHANCED = re.compile(r"(?<!\d)([245])\d\d[ -]+#?([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
# A lone enhanced code: not part of an IP address or a version number.
_ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
# A basic reply code at the start of the text or after "said:", "smtp;", "(", ...
# "554: delivery error" (Yahoo) puts a colon after the code.
_BASIC = re.compile(r"(?:^|[\s;:(#])([45][0-5]\d)(?=[ :-]|$)", re.MULTILINE)


def extract_status(text: str | None) -> str | None:
    """Find the RFC 3463 status inside an SMTP reply or a diagnostic.

    ``"550 5.1.1 <x@y>: Recipient address rejected"`` gives ``"5.1.1"``. When the reply has
    only a basic RFC 5321 code (``"550 Requested action not taken: mailbox unavailable"``)
    the class alone is kept: 5xx gives ``"5.0.0"`` and 4xx gives ``"4.0.0"``. Returns None
    when neither is present.
    """
    if not text:
        return None
    paired = _REPLY_AND_ENHANCED.search(text)
    if paired is not None and paired.group(1) == paired.group(2)[0]:
        return paired.group(2)
    enhanced = _ENHANCED.search(text)
    if enhanced is not None and enhanced.group(1)[0] in "45":
        return enhanced.group(1)
    basic = _BASIC.search(text)
    if basic is not None:
        return f"{basic.group(1)[0]}.0.0"
    return None


def classify_status(status: str | None, diagnostic: str | None) -> BounceKind:
    """Apply the BNC-03 table; without any code, only blocklist wording is recognised."""
    code = effective_status(None, status) or extract_status(diagnostic)
    return KIND_OF_VERDICT[classify(None, code, diagnostic)]


def best_status(status: str | None, diagnostic: str | None) -> str | None:
    """The most specific code available: a generic ``Status: 5.0.0`` yields to ``550 5.1.1``."""
    code = effective_status(None, status)
    found = extract_status(diagnostic)
    if code is None:
        return found
    generic = code.endswith(".0.0")
    if found is not None and generic and not found.endswith(".0.0") and found[0] == code[0]:
        return found
    return code


def event_from_smtp_reply(recipient: str, reply: SmtpReply) -> BounceEvent:
    """Classify a synchronous RCPT/DATA rejection from our relay (BNC-05)."""
    return BounceEvent(
        kind=KIND_OF_VERDICT[reply.verdict],
        recipient=normalise_address(recipient) or recipient.strip().lower(),
        status=reply.status,
        diagnostic=f"smtp; {reply.text}",
        envelope_rcpt=None,
        original_message_id=None,
        classifier="smtp",
    )


def refine_kind(reported: BounceKind, status: str | None, diagnostic: str | None) -> BounceKind:
    """Let the SMTP status sharpen a provider's coarse verdict without overturning it.

    A provider's "permanent bounce" with 5.7.1 is a policy rejection, and with 5.2.2 a full
    mailbox; a "temporary" one stays soft unless it is a 4.7.x reputation deferral.
    """
    found = classify_status(status, diagnostic)
    if reported is BounceKind.HARD and found in (BounceKind.SOFT, BounceKind.POLICY):
        return found
    if reported is BounceKind.SOFT and found is BounceKind.POLICY:
        return found
    return reported
