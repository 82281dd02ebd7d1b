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

from dataclasses import dataclass
from typing import Protocol

from newsletter.delivery.recipient import carries
from newsletter.errors import (
    ConfigError,
    PermanentDeliveryError,
    RelayUnavailableError,
    RelayUnreachableError,
)

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
    if not carries(address, smtputf8=smtputf8):
        raise PermanentDeliveryError(
            f"recipient address {address!r} cannot be used in SMTP", enhanced_status="5.1.3"
        )


def check_sender(address: str) -> None:
    """Raise ``ConfigError`` for an envelope sender SMTP cannot carry (it comes from settings)."""
    if not carries(address, smtputf8=False):
        raise ConfigError(f"envelope sender {address!r} cannot be used in SMTP")
