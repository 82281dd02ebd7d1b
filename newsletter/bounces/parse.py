"""Turn one inbound message to the bounce domain into bounce events: ``parse_bounce``.

The order matters and is the point of this module:

1. guards: empty, oversized, absurdly nested, truncated or header-less input is UNPARSEABLE;
2. RFC 3464 / RFC 6533 delivery status notifications (``dsn.py``);
3. RFC 5965 abuse reports (``arf.py``);
4. automatic replies (``autoreply.py``), after 2 and 3 because bounces say "auto-replied" too;
5. flufl.bounce's heuristics for non-standard bounces (qmail, Exim, old Gmail, Yahoo...),
   with the status read from the text next to each failed address;
6. anything else is UNKNOWN (an ordinary message that landed on the bounce address).

Pure: bytes in, events out, no I/O and no clock. It never raises: a message we cannot read
becomes one UNPARSEABLE event, so the receiver keeps the raw bytes for a person to look at and
moves on: nothing is lost silently, and one bad message cannot stop the others.
"""

from __future__ import annotations

import email.policy
import re
from email.message import Message
from email.parser import BytesParser

from flufl.bounce import all_failures

from newsletter.bounces.arf import parse_arf
from newsletter.bounces.autoreply import auto_reply_event, is_auto_reply
from newsletter.bounces.classify import classify_status, extract_status
from newsletter.bounces.dsn import parse_dsn
from newsletter.bounces.event import BounceEvent, BounceKind, normalise_address
from newsletter.bounces.mime import (
    body_text,
    header,
    is_cut_short,
    notification_part,
    quoted_message_id,
    returned_message_id,
)

# MTAs return at most the first ~100 KB of the original (Postfix bounce_size_limit is 50 KB),
# so a bounce many megabytes long is not a report we can trust; don't spend memory on it.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# A DSN has 1 multipart; a bounce of a forwarded digest maybe a dozen. Python's parser recurses
# once per level and dies near 1000, so refuse long before that, with a cheap byte count.
MAX_MULTIPART_DECLARATIONS = 64
SEGMENT_CHARS = 1_000  # how far after a failed address we look for its SMTP reply
# flufl's detectors read every line of every part (3 s for a 9 MB body); the failed
# addresses are always in the first few KB of a bounce, so it only sees the head.
FLUFL_INPUT_BYTES = 256 * 1024

_PARSER = BytesParser(policy=email.policy.compat32)
_MULTIPART = re.compile(rb"content-type:\s*multipart/", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def parse_bounce(raw: bytes, envelope_rcpt: str | None = None) -> list[BounceEvent]:
    """Events for one inbound message; ``envelope_rcpt`` is the (VERP) address it came to.

    Returns an empty list only for a DSN that reports successes (Action: delivered).
    """
    rcpt = normalise_address(envelope_rcpt)
    try:
        return _parse(raw, rcpt)
    except Exception as exc:
        # The email package and flufl raise assorted errors on hostile input (RecursionError,
        # UnicodeError, AttributeError inside detectors...). None of them may stop the
        # receiver: the message is kept as UNPARSEABLE and a human looks at it.
        return [_unparseable(f"parser failed: {type(exc).__name__}", rcpt)]


def _parse(raw: bytes, rcpt: str | None) -> list[BounceEvent]:
    refusal = _refuse(raw)
    if refusal is not None:
        return [_unparseable(refusal, rcpt)]
    msg = _PARSER.parsebytes(raw)
    if not msg.keys():
        return [_unparseable("no header fields: not an email message", rcpt)]
    if is_cut_short(msg):
        return [_unparseable("MIME boundaries missing: the report was cut short", rcpt)]

    for reader in (parse_dsn, parse_arf):
        events = reader(msg, rcpt)
        if events is not None:
            return events
    if is_auto_reply(msg):
        return [auto_reply_event(msg, rcpt)]

    text = body_text(msg)
    if text is None and not msg.is_multipart():
        return [_unparseable("body cannot be decoded (transfer encoding or charset)", rcpt)]
    head = msg if len(raw) <= FLUFL_INPUT_BYTES else _PARSER.parsebytes(raw[:FLUFL_INPUT_BYTES])
    events = _flufl_events(head, text or "", rcpt)
    if events:
        return events
    return [
        BounceEvent(
            kind=BounceKind.UNKNOWN,
            recipient=None,
            status=None,
            diagnostic=header(msg, "Subject"),
            envelope_rcpt=rcpt,
            original_message_id=returned_message_id(msg) or quoted_message_id(text),
            classifier="heuristic",
        )
    ]


def _refuse(raw: bytes) -> str | None:
    if not raw or not raw.strip():
        return "empty message"
    if len(raw) > MAX_MESSAGE_BYTES:
        return f"message is {len(raw)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit"
    if len(_MULTIPART.findall(raw)) > MAX_MULTIPART_DECLARATIONS:
        return "MIME nested or repeated too deeply to be a delivery report"
    return None


def _flufl_events(msg: Message, text: str, rcpt: str | None) -> list[BounceEvent]:
    """flufl finds the addresses; the status comes from the words next to each one.

    ``msg`` may be only the head of a large message; ``text`` is the notification text.
    """
    temporary, permanent = all_failures(msg)
    addresses = [
        (address, is_permanent)
        for is_permanent, found in ((True, permanent), (False, temporary))
        for address in sorted(_decode_addresses(found))
    ]
    if not addresses:
        return []
    notice = notification_part(text)
    message_id = returned_message_id(msg) or quoted_message_id(text)
    events = []
    for address, is_permanent in addresses:
        diagnostic = _segment_after(notice, address, [other for other, _ in addresses])
        status = extract_status(diagnostic)
        kind = classify_status(status, diagnostic)
        if kind is BounceKind.UNKNOWN:
            # No code in the text: trust flufl's verdict (its heuristics say "permanent"
            # whenever they cannot tell, BNC-08 c).
            kind = BounceKind.HARD if is_permanent else BounceKind.SOFT
        events.append(
            BounceEvent(
                kind=kind,
                recipient=address,
                status=status,
                diagnostic=diagnostic,
                envelope_rcpt=rcpt,
                original_message_id=message_id,
                classifier="flufl",
            )
        )
    return events


def _decode_addresses(found: frozenset[bytes] | set[bytes]) -> set[str]:
    addresses = set()
    for item in found:
        raw = item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
        address = normalise_address(raw)
        if address is not None:
            addresses.add(address)
    return addresses


def _segment_after(text: str, address: str, all_addresses: list[str]) -> str | None:
    """The text from ``address`` to the next other failed address (capped), whitespace folded."""
    lowered = text.lower()
    start = lowered.find(address)
    if start < 0:
        return None
    end = min(len(text), start + SEGMENT_CHARS)
    for other in all_addresses:
        if other == address:
            continue
        at = lowered.find(other, start + len(address))
        if 0 <= at < end:
            end = at
    segment = _WHITESPACE.sub(" ", text[start:end]).strip()
    return segment or None


def _unparseable(reason: str, rcpt: str | None) -> BounceEvent:
    return BounceEvent(
        kind=BounceKind.UNPARSEABLE,
        recipient=None,
        status=None,
        diagnostic=reason,
        envelope_rcpt=rcpt,
        original_message_id=None,
        classifier="guard",
    )
