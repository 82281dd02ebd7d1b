"""An in-memory ``Transport`` for tests of the send loop: records messages, answers as scripted.

Script answers per address or per domain::

    transport = MemoryTransport()
    transport.answer("full@example.com", 452, "4.2.2 Mailbox full")
    transport.answer("example.net", 550, "5.1.1 No such user")
    transport.drop("down.example", maybe_delivered=False)   # relay lost, RelayUnavailableError

Addresses are checked exactly like the SMTP transport checks them, so a test of the loop sees
the same errors for a malformed address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter.delivery.transports import (
    SendResult,
    check_recipient,
    check_sender,
)
from newsletter.errors import (
    InvalidInput,
    PermanentDeliveryError,
    RelayUnavailableError,
    TransientDeliveryError,
)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One accepted message, as the relay would have received it."""

    envelope_from: str
    recipient: str
    message: bytes


@dataclass(frozen=True, slots=True)
class _Answer:
    code: int
    text: str


@dataclass(frozen=True, slots=True)
class _Drop:
    maybe_delivered: bool


@dataclass
class MemoryTransport:
    """Accepts everything not scripted otherwise; ``sent`` lists what was accepted, in order."""

    eight_bit: bool = True
    smtputf8: bool = False
    sent: list[SentMessage] = field(default_factory=list)
    closed: bool = False
    # Called with each address before it is answered: a test's way to let time pass on its
    # clock, or to act (pause, unsubscribe) while the batch runs.
    on_send: Callable[[str], None] | None = None
    _script: dict[str, _Answer | _Drop] = field(default_factory=dict)

    def answer(self, address_or_domain: str, code: int, text: str) -> None:
        """Reply ``code text`` (e.g. ``550, "5.1.1 No such user"``) to this address or domain."""
        self._script[address_or_domain.lower()] = _Answer(code, text)

    def drop(self, address_or_domain: str, *, maybe_delivered: bool = False) -> None:
        """Lose the connection when sending to this address or domain."""
        self._script[address_or_domain.lower()] = _Drop(maybe_delivered)

    def forget(self, address_or_domain: str) -> None:
        """Answer this address or domain normally again."""
        self._script.pop(address_or_domain.lower(), None)

    def send(self, envelope_from: str, recipient: str, message: bytes) -> SendResult:
        check_sender(envelope_from)
        check_recipient(recipient, smtputf8=self.smtputf8)
        if not self.eight_bit and not message.isascii():
            raise InvalidInput("8bit message for a relay without 8BITMIME; render 7bit")
        self.closed = False
        if self.on_send is not None:
            self.on_send(recipient)
        lowered = recipient.lower()
        scripted = self._script.get(lowered) or self._script.get(lowered.rpartition("@")[2])
        if isinstance(scripted, _Drop):
            self.closed = True
            raise RelayUnavailableError(
                "connection to the relay lost (scripted)", maybe_delivered=scripted.maybe_delivered
            )
        if isinstance(scripted, _Answer) and scripted.code >= 400:
            enhanced = scripted.text.split(" ", 1)[0] if scripted.text[:2] in ("4.", "5.") else None
            text = f"{scripted.code} {scripted.text}"
            if scripted.code == 421:
                self.closed = True
                raise RelayUnavailableError(text, code=421, enhanced_status=enhanced)
            error = TransientDeliveryError if scripted.code < 500 else PermanentDeliveryError
            raise error(text, code=scripted.code, enhanced_status=enhanced)
        self.sent.append(SentMessage(envelope_from, recipient, message))
        queue_id = f"MEM{len(self.sent)}"
        return SendResult(
            code=250,
            reply=f"2.0.0 Ok: queued as {queue_id}",
            queue_id=queue_id,
            enhanced_status="2.0.0",
        )

    def close(self) -> None:
        self.closed = True
