"""The one event type every bounce source produces, and its value types (kind, evidence, source).

Mailbox parsing (``parse.parse_bounce``), synchronous SMTP rejections
(``classify.event_from_smtp_reply``) and every provider webhook
(``sources/webhooks/*.parse``) all return ``list[BounceEvent]``, so the policy and the
service downstream never need to know where a bounce came from.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from newsletter.subscribers.statuses import StatusChangeSource


class BounceKind(enum.StrEnum):
    """What a bounce means for the address (BNC-03, BNC-07, BNC-09)."""

    HARD = "hard"  # the address does not work: suppress
    SOFT = "soft"  # try again later and count
    POLICY = "policy"  # our reputation or content was refused: alert and throttle, keep the address
    COMPLAINT = "complaint"  # the recipient reported us as spam: unsubscribe now
    AUTO_REPLY = "auto-reply"  # out-of-office and friends: not a bounce at all
    UNPARSEABLE = "unparseable"  # not readable as mail: quarantine for a human
    UNKNOWN = "unknown"  # readable, but none of the above


class Evidence(enum.StrEnum):
    """What ties an event to a message we sent to a subscriber; only these change one."""

    VERP = "verp"  # a valid VERP token on the envelope recipient (BNC-01)
    MESSAGE_ID = "message-id"  # our own signed Message-ID in the returned message or report
    WEBHOOK = "webhook"  # a provider webhook whose signature verified, naming a message we sent
    SMTP = "smtp"  # the relay's reply to our own RCPT or DATA (BNC-05)
    NONE = "none"  # nothing: stored as unverified, applied only by a person who looked


class BounceSource(enum.StrEnum):
    """Where a bounce came from."""

    SMTP = "smtp"  # our own receiver (``newsletter bounces serve``)
    IMAP = "imap"
    POP3 = "pop3"
    FILE = "file"  # ``newsletter bounces process FILE``
    WEBHOOK = "webhook"
    SYNC = "sync"  # the relay's hard, soft or policy reply while sending (BNC-05)
    ADMIN = "admin"  # a person (``newsletter subscriber reinstate``)


# What a status change the bounce stage makes says about its source in the subscriber audit.
STATUS_CHANGE_SOURCE: dict[BounceSource, StatusChangeSource] = {
    BounceSource.SMTP: StatusChangeSource.SMTP,
    BounceSource.IMAP: StatusChangeSource.IMAP,
    BounceSource.POP3: StatusChangeSource.POP3,
    BounceSource.FILE: StatusChangeSource.FILE,
    BounceSource.WEBHOOK: StatusChangeSource.WEBHOOK,
    BounceSource.SYNC: StatusChangeSource.SYNC,
    BounceSource.ADMIN: StatusChangeSource.ADMIN,
}


@dataclass(frozen=True, slots=True)
class BounceEvent:
    """One recipient's outcome as reported by one source.

    ``recipient`` and ``envelope_rcpt`` are lower-cased bare addresses;
    ``original_message_id`` keeps its angle brackets (``<id@host>``), as the send-log stores
    the Message-ID header value.
    """

    kind: BounceKind
    recipient: str | None
    status: str | None
    diagnostic: str | None
    envelope_rcpt: str | None
    original_message_id: str | None
    classifier: str
    source_id: str | None = None
    reporting_mta: str | None = None


_ADDRESS_TYPE = re.compile(r"^\s*(?:rfc822|utf-8)\s*;", re.IGNORECASE)
_ANGLE_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_BARE_ADDRESS = re.compile(r"[^\s<>(),;:\"']+@[^\s<>(),;:\"']+")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def normalise_address(value: str | None) -> str | None:
    """Reduce ``rfc822; <Jane@Example.COM>`` or ``"Jane" <jane@x>`` to ``jane@example.com``.

    Returns None when there is no ``local@domain`` in the value (an empty or redacted field),
    or when it holds a control character: "vic\\x00tim@…" names nobody (and must not be read
    as "tim@…"), and PostgreSQL refuses a NUL even in a query.
    """
    if not value or _CONTROL.search(value):
        return None
    text = _ADDRESS_TYPE.sub("", value, count=1).strip()
    match = _ANGLE_ADDRESS.search(text) or _BARE_ADDRESS.search(text)
    if match is None:
        return None
    address = match.group(1) if match.re is _ANGLE_ADDRESS else match.group(0)
    return address.strip(".").lower() or None


def normalise_message_id(value: str | None) -> str | None:
    """Return ``<id@host>`` from a header value, adding brackets some providers strip."""
    if not value:
        return None
    match = _MESSAGE_ID.search(value)
    if match is not None:
        return match.group(0)
    bare = value.strip()
    if not bare or any(ch.isspace() for ch in bare):
        return None
    return f"<{bare}>"


# What a hostile report may put in a field that PostgreSQL refuses (NUL) or that has no place in
# text (other controls); the raw message keeps the original.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def storable(text: str | None, limit: int | None = None) -> str | None:
    """``text`` as both databases store it alike: controls removed, cut at the column width."""
    return (_UNSTORABLE.sub("", text)[:limit] or None) if text else None
