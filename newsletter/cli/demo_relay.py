"""The demo's stand-in for the mail servers out there: a local SMTP relay that keeps every
message it accepts in ``outbox/`` and bounces two addresses the way real servers do.

- ``no-such-reader@…`` is refused at once (``550 5.1.1``): a synchronous hard bounce.
- ``moved-away@…`` is accepted, and afterwards a delivery status notification (RFC 3464)
  comes back to the message's VERP envelope sender, as a receiving MTA would send it.
"""

from __future__ import annotations

import smtplib
import socket
import threading
from dataclasses import dataclass, field
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from newsletter.db import utcnow

REFUSED_LOCAL_PART = "no-such-reader"
RETURNED_LOCAL_PART = "moved-away"


@dataclass
class DemoRelay:
    outbox: Path
    accepted: int = 0
    refused: int = 0
    # (VERP envelope sender, recipient) of each message that will come back as a DSN.
    to_return: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.split("@")[0] == REFUSED_LOCAL_PART:
            with self.lock:
                self.refused += 1
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content
        with self.lock:
            self.accepted += 1
            number = self.accepted
            for rcpt in envelope.rcpt_tos:
                if rcpt.split("@")[0] == RETURNED_LOCAL_PART:
                    self.to_return.append((envelope.mail_from, rcpt))
        (self.outbox / f"{number:04d}.eml").write_bytes(content)
        return f"250 2.0.0 Ok: queued as DEMO{number:04d}"

    def return_bounces(self, receiver_port: int) -> int:
        """Send the DSNs the receiving servers would send, to the bounce receiver."""
        with smtplib.SMTP("127.0.0.1", receiver_port) as smtp:
            for verp_address, recipient in self.to_return:
                smtp.sendmail("<>", [verp_address], delivery_status_notification(recipient))
        return len(self.to_return)


DSN_TEMPLATE = """\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
Date: {date}
Message-ID: {message_id}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="demo-dsn"

--demo-dsn
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.net said: 550 5.1.1 User unknown

--demo-dsn
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--demo-dsn--
"""


def delivery_status_notification(recipient: str) -> bytes:
    """A Postfix-style RFC 3464 report: the mailbox ``recipient`` no longer exists."""
    text = DSN_TEMPLATE.format(
        date=format_datetime(utcnow()),
        message_id=make_msgid(domain="mx.example.net"),
        recipient=recipient,
    )
    return text.replace("\n", "\r\n").encode("ascii")


def start_relay(outbox: Path) -> tuple[DemoRelay, Controller, int]:
    outbox.mkdir(parents=True, exist_ok=True)
    for old in outbox.glob("*.eml"):  # the outbox shows this run's messages only
        old.unlink()
    relay = DemoRelay(outbox)
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    return relay, controller, port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
