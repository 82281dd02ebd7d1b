"""How a finished message leaves us: the ``Transport`` protocol the send loop talks to.

One module per adapter: ``smtp`` (a relay over one reused ``smtplib`` connection) and
``memory`` (records messages, scripted answers; for tests of the send loop). Each ``send``
carries one recipient and either returns the relay's 2xx reply or raises, for that recipient:

- ``PermanentDeliveryError``: a 5xx reply; do not retry this recipient.
- ``TransientDeliveryError``: a 4xx reply for this recipient; retry it later.
- ``RelayUnreachableError``: no connection could be made at all; nothing was sent.
- ``RelayUnavailableError`` (a ``TransientDeliveryError``): the relay could not be reached, dropped
  the connection, timed out or answered 421. Says nothing about the recipient: requeue the
  batch and back off, and do not count a bounce (BNC-05). ``maybe_delivered`` is True when the
  connection broke after the whole message was sent, so the relay may have queued it.
- ``ConfigError``: the relay refuses our credentials or cannot give the TLS we require; nothing
  will work until an operator fixes the settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from newsletter.errors import (
    ConfigError,
    PermanentDeliveryError,
    RelayUnavailableError,
    RelayUnreachableError,
)

# Envelope addresses go into SMTP command lines, so nothing that could end a line or a parameter
# may pass (SEC-03): a dot-atom local part and a hostname (IDNA A-labels: ``recipient``).
ENVELOPE_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
# With SMTPUTF8 (RFC 6531) the local part may also hold non-ASCII characters, none of them a
# control, a space or a line break.
UTF8_ENVELOPE_ADDRESS = re.compile(
    r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]|[^\x00-\x7f\x85\xa0\u2028\u2029\s]){1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
MAX_ADDRESS_OCTETS = 254  # RFC 5321 §4.5.3.1.3, less the angle brackets


__all__ = [
    "RelayUnavailableError",
    "RelayUnreachableError",
    "SendResult",
    "Transport",
    "check_recipient",
    "check_sender",
]


@dataclass(frozen=True, slots=True)
class SendResult:
    """The relay's reply to the end of DATA: it has taken responsibility for the message."""

    code: int
    reply: str
    queue_id: str | None
    enhanced_status: str | None


class Transport(Protocol):
    """Sends one message to one recipient; declared here, used by the send loop."""

    @property
    def eight_bit(self) -> bool:
        """Whether the relay accepts 8bit bodies (8BITMIME); may connect to find out."""
        ...

    @property
    def smtputf8(self) -> bool:
        """Whether the relay takes non-ASCII addresses (SMTPUTF8); may connect to find out."""
        ...

    def send(self, envelope_from: str, recipient: str, message: bytes) -> SendResult:
        """Deliver ``message`` (CRLF, not dot-stuffed) or raise a ``DeliveryError``."""
        ...

    def close(self) -> None:
        """Release the connection; the transport may be used again afterwards."""
        ...


def check_recipient(address: str, *, smtputf8: bool = False) -> None:
    """Raise ``PermanentDeliveryError`` (5.1.3, bad syntax) for an address SMTP cannot carry.

    ``smtputf8``: the relay offered SMTPUTF8, so a non-ASCII local part may pass.
    """
    pattern = UTF8_ENVELOPE_ADDRESS if smtputf8 and not address.isascii() else ENVELOPE_ADDRESS
    if len(address.encode()) > MAX_ADDRESS_OCTETS or not pattern.fullmatch(address):
        raise PermanentDeliveryError(
            f"recipient address {address!r} cannot be used in SMTP", enhanced_status="5.1.3"
        )


def check_sender(address: str) -> None:
    """Raise ``ConfigError`` for an envelope sender SMTP cannot carry (it comes from settings)."""
    if len(address) > MAX_ADDRESS_OCTETS or not ENVELOPE_ADDRESS.fullmatch(address):
        raise ConfigError(f"envelope sender {address!r} cannot be used in SMTP")
