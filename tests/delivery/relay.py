"""A scripted SMTP relay for campaign tests: a real aiosmtpd server that can misbehave.

It answers per recipient according to rules (e.g. 451 the first time, 550 always, 421 for a
whole domain the first N times) and can drop the connection every N transactions, and it
records every message it accepted, so tests can count copies per recipient.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from newsletter.config import SmtpUrl

# (recipient, how many times it was tried before) -> an SMTP reply, or None to accept
Rule = Callable[[str, int], str | None]


@dataclass
class Accepted:
    mail_from: str
    rcpt: str
    content: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RelayHandler:
    rules: list[Rule] = field(default_factory=list)
    drop_every: int = 0  # drop the connection at every Nth MAIL FROM (0: never)
    accepted: list[Accepted] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    data_delay: float = 0.0  # seconds before answering the end of DATA: a slow relay
    open_connections: int = 0
    most_connections: int = 0  # the most connections open at once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connected(self) -> None:
        with self.lock:
            self.open_connections += 1
            self.most_connections = max(self.most_connections, self.open_connections)

    def disconnected(self) -> None:
        with self.lock:
            self.open_connections -= 1

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.transactions += 1
            drop = self.drop_every and self.transactions % self.drop_every == 0
        if drop:
            server.transport.close()
            return "421 4.4.2 connection dropped by the test relay"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            before = self.tries[address]
            self.tries[address] += 1
        for rule in self.rules:
            reply = rule(address, before)
            if reply is not None:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        content = envelope.original_content or envelope.content
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.accepted.append(Accepted(envelope.mail_from, rcpt, content))
        return f"250 2.0.0 Ok: queued as Q{len(self.accepted)}"

    def copies(self) -> Counter[str]:
        with self.lock:
            return Counter(a.rcpt for a in self.accepted)


@dataclass
class Relay:
    handler: RelayHandler
    port: int

    @property
    def url(self) -> SmtpUrl:
        return SmtpUrl("smtp", "127.0.0.1", self.port, None, None)

    @property
    def env_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _CountingSMTP(SMTP):  # type: ignore[misc]
    """Tells the handler about every connection opened and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.event_handler.connected()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.event_handler.disconnected()


class _CountingController(Controller):  # type: ignore[misc]
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def running_relay(
    handler: RelayHandler | None = None, port: int | None = None, **smtp_options: Any
) -> Iterator[Relay]:
    """An aiosmtpd relay; ``smtp_options`` go to its SMTP server (``enable_SMTPUTF8=True``)."""
    handler = handler or RelayHandler()
    port = port or free_port()
    controller = _CountingController(handler, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield Relay(handler, port)
    finally:
        controller.stop()
