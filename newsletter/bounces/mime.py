"""Bounded reading of MIME for the bounce parsers: walking, header values, text, Message-IDs.

Bounces arrive from strangers, so every helper here has a limit: how deep it walks, how many
parts it looks at, how much text it decodes. Nothing here raises for bad input; a part that
cannot be decoded reads as None and the caller decides what that means.
"""

from __future__ import annotations

import email.errors
import re
from collections.abc import Iterator
from contextlib import suppress
from email.header import decode_header, make_header
from email.message import Message

from newsletter.bounces.event import normalise_message_id

MAX_DEPTH = 8  # a DSN is 2 levels deep; Outlook nests 3; anything deeper is not a report
MAX_PARTS = 200
MAX_TEXT_CHARS = 256_000  # notification texts are a few KB; never decode an attachment whole

_UNREADABLE_DEFECTS = (
    email.errors.InvalidBase64CharactersDefect,
    email.errors.InvalidBase64PaddingDefect,
    email.errors.InvalidBase64LengthDefect,
)
_TRUNCATION_DEFECTS = (
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.StartBoundaryNotFoundDefect,
)
_RETURNED_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)
_WHITESPACE = re.compile(r"\s+")
_HEADER_LINE = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*)$")
_MESSAGE_ID_LINE = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
# Where plain-text bounces start quoting the returned message.
ORIGINAL_MARKER = re.compile(
    r"^\s*-{2,}.*(?:original message|copy of the message|below this line|message follows"
    r"|returned message|undelivered message|message headers follow).*$",
    re.IGNORECASE | re.MULTILINE,
)


def walk(msg: Message) -> Iterator[Message]:
    """Yield ``msg`` and its parts depth first, never entering a returned ``message/*``.

    The returned original can itself be a bounce (a bounce of a bounce); reading it as our
    report would blame the wrong recipient, so encapsulated messages are leaves here.
    """
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part
        if depth >= MAX_DEPTH or not part.is_multipart():
            continue
        if part.get_content_maintype() == "message":
            continue
        children = part.get_payload()
        if isinstance(children, list):
            stack.extend(
                (child, depth + 1) for child in reversed(children) if isinstance(child, Message)
            )


def is_cut_short(msg: Message) -> bool:
    """True when a multipart lost its closing boundary before the returned original began.

    Many real reports simply omit the final ``--boundary--``; that is harmless when the last
    part is the returned message. When the cut falls in the notification or the status
    fields, recipients or their codes may be missing, so the report cannot be trusted.
    """
    parts = list(walk(msg))
    if not any(isinstance(d, _TRUNCATION_DEFECTS) for part in parts for d in part.defects):
        return False
    leaves = [p for p in parts if not p.is_multipart() or p.get_content_maintype() == "message"]
    return not leaves or not _is_encapsulated(leaves[-1])


def _is_encapsulated(part: Message) -> bool:
    content_type = part.get_content_type()
    return content_type in _RETURNED_TYPES


def header(msg: Message, name: str) -> str | None:
    """A header value as one line of text, RFC 2047 words decoded; None when absent."""
    value = msg.get(name)
    if value is None:
        return None
    text = str(value)
    if "=?" in text:
        # On a bad encoded word keep the raw text: matching on it beats matching on nothing.
        with suppress(email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
            text = str(make_header(decode_header(text)))
    return _WHITESPACE.sub(" ", text).strip()


def text_of(part: Message) -> str | None:
    """Decoded text of a leaf part (at most ``MAX_TEXT_CHARS``); None if it cannot be read."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    if any(isinstance(defect, _UNREADABLE_DEFECTS) for defect in part.defects):
        return None
    charset = part.get_content_charset() or "us-ascii"
    try:
        text = payload[: MAX_TEXT_CHARS * 4].decode(charset, errors="replace")
    except LookupError:
        return None
    return text[:MAX_TEXT_CHARS]


def raw_text_of(part: Message) -> str:
    """Best-effort text of a part whose content we must read whatever its labels say."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload[: MAX_TEXT_CHARS * 4].decode("utf-8", errors="replace")[:MAX_TEXT_CHARS]
    if isinstance(payload, str):
        return payload[:MAX_TEXT_CHARS]
    return ""


def body_text(msg: Message) -> str | None:
    """The human-readable notification: the first text/plain leaf (or the body itself)."""
    for part in walk(msg):
        if part.is_multipart():
            continue
        if part.get_content_type() == "text/plain":
            return text_of(part)
        if part is msg:
            return text_of(part) if part.get_content_maintype() == "text" else None
    return None


def field_blocks(text: str) -> list[list[tuple[str, str]]]:
    """Parse ``Name: value`` blocks separated by blank lines, unfolding continuation lines.

    This reads the bodies of ``message/delivery-status``, ``message/global-delivery-status``
    and ``message/feedback-report`` the same way, whatever the email package made of them.
    """
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}")
            continue
        match = _HEADER_LINE.match(line)
        if match is not None:
            current.append((match.group(1), match.group(2).strip()))
    if current:
        blocks.append(current)
    return blocks


def report_blocks(part: Message) -> list[list[tuple[str, str]]]:
    """Field blocks of a report part, whether parsed as sub-messages or left as text."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return field_blocks(raw_text_of(part))
    blocks: list[list[tuple[str, str]]] = []
    for block in payload:
        if not isinstance(block, Message):
            continue
        # The email package reads message/delivery-status as one sub-message per block, but
        # any other message/* subtype (global-delivery-status, feedback-report) as a single
        # message: first block as its headers, the other blocks left in its body.
        blocks.append(
            [(name, _WHITESPACE.sub(" ", str(value)).strip()) for name, value in block.items()]
        )
        rest = block.get_payload()
        if isinstance(rest, str) and rest.strip():
            blocks.extend(field_blocks(rest[:MAX_TEXT_CHARS]))
    return blocks


def returned_message_id(msg: Message) -> str | None:
    """Message-ID of the returned original: from a ``message/rfc822``-like part, else quoted."""
    for part in walk(msg):
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = normalise_message_id(header(inner[0], "Message-ID"))
                if found is not None:
                    return found
            found = _quoted_message_id(raw_text_of(part))
            if found is not None:
                return found
        elif content_type in ("text/rfc822-headers", "message/global-headers"):
            found = _quoted_message_id(raw_text_of(part))
            if found is not None:
                return found
    return None


def quoted_message_id(text: str | None) -> str | None:
    """Message-ID quoted in a plain-text bounce, looked for after the "original" marker only."""
    if not text:
        return None
    marker = ORIGINAL_MARKER.search(text)
    if marker is None:
        return None
    return _quoted_message_id(text[marker.end() :])


def notification_part(text: str) -> str:
    """The bounce's own words: the text before it starts quoting the original."""
    marker = ORIGINAL_MARKER.search(text)
    return text if marker is None else text[: marker.start()]


def _quoted_message_id(text: str) -> str | None:
    match = _MESSAGE_ID_LINE.search(text)
    return None if match is None else match.group(1)
