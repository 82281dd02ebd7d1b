"""Turn an RFC 3463 status and a diagnostic text into a ``BounceKind`` (BNC-03, BNC-05).

The table, from the standards sheet:

* hard: 5.1.1 bad mailbox, 5.1.2 bad domain, 5.1.3 bad syntax, 5.1.6 moved, 5.1.10 null MX,
  and every other 5.x.x we do not list below;
* soft: every 4.x.x except 4.7.x; 5.2.2 mailbox full (RFC 3463 §3.3 calls it persistent
  transient); 5.2.3 and 5.3.4 message too big (our content, not the address);
* policy: every 5.7.x and 4.7.x, and blocklist or reputation wording in the diagnostic when the
  code itself is generic (``5.0.0``, ``5.5.0``, or only a basic ``550``).
"""

from __future__ import annotations

import re

from newsletter.bounces.event import BounceEvent, BounceKind, normalise_address

SOFT_PERMANENT_STATUSES = frozenset({"5.2.2", "5.2.3", "5.3.4"})
# Codes that say nothing beyond "it failed": the diagnostic wording decides then.
GENERIC_STATUSES = frozenset({"5.0.0", "4.0.0", "5.5.0", "4.5.0"})

_POLICY_TEXT = re.compile(
    r"block(?:ed|list|ing)|spamhaus|black\s?list|(?<!not )\blisted\b|reputation|\bspamcop\b|\brbl\b"
    r"|\bdnsbl\b|barracuda|\bsorbs\b|rejected\s+(?:as|because\s+of)\s+spam|spam\s+(?:policy|detected)"
    # Provider wordings seen in real rejections: "Comcast block for spam … #BL000000",
    # "550 Denied due to spam list".
    r"|\bblock\s+for\s+spam|\bBL\d{6}\b|spam\s+list",
    re.IGNORECASE,
)
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
    code = _clean_status(status) or extract_status(diagnostic)
    if code is None:
        return BounceKind.POLICY if _mentions_policy(diagnostic) else BounceKind.UNKNOWN
    klass, subject, _detail = code.split(".")
    if code in GENERIC_STATUSES and _mentions_policy(diagnostic):
        return BounceKind.POLICY
    if klass == "4":
        return BounceKind.POLICY if subject == "7" else BounceKind.SOFT
    if klass == "5":
        if subject == "7":
            return BounceKind.POLICY
        if code in SOFT_PERMANENT_STATUSES:
            return BounceKind.SOFT
        return BounceKind.HARD  # 5.1.1 and friends, and every 5.x.x we do not know
    return BounceKind.UNKNOWN  # 2.x.x is a success, not a bounce


def best_status(status: str | None, diagnostic: str | None) -> str | None:
    """The most specific code available: a generic ``Status: 5.0.0`` yields to ``550 5.1.1``."""
    code = _clean_status(status)
    found = extract_status(diagnostic)
    if code is None:
        return found
    generic = code.endswith(".0.0")
    if found is not None and generic and not found.endswith(".0.0") and found[0] == code[0]:
        return found
    return code


def event_from_smtp_reply(recipient: str, code: int, message: str) -> BounceEvent:
    """Classify a synchronous RCPT/DATA rejection from our relay (BNC-05)."""
    text = f"{code} {message}".strip()
    status = extract_status(text)
    return BounceEvent(
        kind=classify_status(status, message),
        recipient=normalise_address(recipient) or recipient.strip().lower(),
        status=status,
        diagnostic=f"smtp; {text}",
        envelope_rcpt=None,
        original_message_id=None,
        classifier="smtp",
    )


def _clean_status(status: str | None) -> str | None:
    if not status:
        return None
    match = _ENHANCED.search(status)
    if match is None or match.group(1)[0] not in "245":
        return None
    return match.group(1)


def _mentions_policy(diagnostic: str | None) -> bool:
    return bool(diagnostic) and _POLICY_TEXT.search(diagnostic or "") is not None


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
