"""The SMTP receiver for the bounce domain (``newsletter bounces serve``), on aiosmtpd.

Our MX for ``bounces.<domain>`` points here. For each message: accept RCPTs at the bounce
domain only, store the raw bytes and commit, *then* answer 250 (record first, acknowledge
last: a crash in between costs a redelivery, never a bounce), then hand the stored id to
processing. Processing never runs on the event loop: the hand-off is a queue to a worker thread
(embedded mode) or a Celery task (broker).

It accepts null-sender mail (every bounce has ``MAIL FROM:<>``), never sends any mail
(BNC-06), refuses messages over ``MAX_MESSAGE_BYTES`` with 552, and never dies on input: a
message the parser cannot read is stored anyway and becomes an UNPARSEABLE event (quarantine).
If the database is down it answers 451, so the sending MTA keeps the bounce and retries.

The receiver commits as it goes (a message before its 250, a processed message before the
next), so it takes a session factory from its caller (``newsletter bounces serve``) rather
than opening sessions of its own.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from newsletter.bounces import intake, processing
from newsletter.bounces.event import BounceSource
from newsletter.config import Settings
from newsletter.db import SessionFactory, utcnow
from newsletter.errors import InvalidInput
from newsletter.subscribers.consent import unsubscribe_by_token
from newsletter.subscribers.tokens import read_unsubscribe_token

log = logging.getLogger(__name__)

# parse.MAX_MESSAGE_BYTES: a bounce is a few KB; a bigger one is not worth storing.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# A bounce is addressed to one VERP address; a few more tolerate odd MTAs, hundreds are abuse.
MAX_RECIPIENTS = 20
UNSUBSCRIBE_PREFIX = (
    "unsubscribe+"  # the local part of newsletter.subscribers.tokens.unsubscribe_mailto
)
STORE_THREADS = 4  # concurrent database writers (PostgreSQL); SQLite queues them anyway

# What the receiver does with a stored message id once it has answered 250.
Handoff = Callable[[int], None]


class BounceHandler:
    """aiosmtpd handler: RCPT filter, store-then-250 on DATA, hand-off afterwards."""

    def __init__(self, settings: Settings, sessions: SessionFactory, handoff: Handoff) -> None:
        self.settings = settings
        self.sessions = sessions
        self.domain = settings.bounce_address.domain.lower()
        self.handoff = handoff
        self.executor = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="bounce-store")
        self._handoffs: set[Future[None]] = set()
        self._lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802 - the hook names are aiosmtpd's
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.domain:
            return "550 5.1.1 This server only accepts mail for its bounce addresses"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if local.lower().startswith(UNSUBSCRIBE_PREFIX):
            # The mailto: of List-Unsubscribe (RFC 2369): any message to it unsubscribes.
            token = local[len(UNSUBSCRIBE_PREFIX) :].lower()
            try:
                read_unsubscribe_token(self.settings.secret_key, token)
            except InvalidInput:
                return "550 5.1.1 Unknown unsubscribe address"
            envelope.unsubscribe_tokens = {
                **getattr(envelope, "unsubscribe_tokens", {}),
                address: token,
            }
            envelope.rcpt_tos.append(address)  # aiosmtpd wants a recipient before DATA
            return "250 2.1.5 OK"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):  # only if someone runs aiosmtpd with decode_data=True
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        tokens: dict[str, str] = getattr(envelope, "unsubscribe_tokens", {})
        bounce_rcpts = [rcpt for rcpt in envelope.rcpt_tos if rcpt not in tokens]
        try:
            if tokens:
                await loop.run_in_executor(self.executor, self.unsubscribe, list(tokens.values()))
            ids = await loop.run_in_executor(self.executor, self.store, raw, bounce_rcpts)
        except Exception:
            # Nothing was stored, so we must not say 250: the sending MTA keeps the bounce
            # and tries again later. Logged with a traceback because it is our failure.
            log.exception("could not store a bounce from %s", envelope.mail_from)
            return "451 4.3.0 Temporary storage failure, try again later"
        for bounce_message_id in ids:
            # Not awaited: the 250 goes out now, the hand-off (a queue, or a Celery send) after.
            future = self.executor.submit(self.handoff, bounce_message_id)
            with self._lock:
                self._handoffs.add(future)
            future.add_done_callback(self._handed_off)
        return "250 2.0.0 Stored"

    def unsubscribe(self, tokens: list[str]) -> None:
        """Unsubscribe for each mailed unsubscribe address, committed before the 250."""
        with self.sessions() as session:
            for token in tokens:
                unsubscribe_by_token(session, self.settings.secret_key, token, now=utcnow())

    def store(self, raw: bytes, rcpts: list[str]) -> list[int]:
        """One row per envelope recipient, committed before the SMTP reply."""
        with self.sessions() as session:
            messages = [
                intake.record_raw(session, raw, source=BounceSource.SMTP, envelope_rcpt=rcpt)
                for rcpt in rcpts
            ]
            session.flush()
            return [message.id for message in messages]

    def drain(self) -> None:
        """Wait until every message answered with 250 so far has been handed off."""
        with self._lock:
            pending = list(self._handoffs)
        wait(pending)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def _handed_off(self, future: Future[None]) -> None:
        with self._lock:
            self._handoffs.discard(future)
        if not future.cancelled() and future.exception() is not None:
            # Stored and committed already: ``bounces process-pending`` (or the next start of
            # the receiver) processes it, so the 250 we gave was right. Logged for a person.
            log.error("could not hand off a stored bounce", exc_info=future.exception())


class BackgroundProcessor:
    """Embedded mode's hand-off: one worker thread processing stored ids in arrival order."""

    def __init__(self, settings: Settings, sessions: SessionFactory) -> None:
        self.settings = settings
        self.sessions = sessions  # one transaction per message
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.failed = 0  # messages whose processing raised; they stay stored for a retry
        self.thread = threading.Thread(target=self._run, name="bounce-process", daemon=True)

    def __call__(self, bounce_message_id: int) -> None:
        self.queue.put(bounce_message_id)

    def start(self, *, sweep: bool = True) -> None:
        if sweep:
            # Messages stored by an earlier run that stopped before processing them.
            with self.sessions() as session:
                for bounce_message_id in intake.pending_message_ids(session):
                    self.queue.put(bounce_message_id)
        self.thread.start()

    def join(self) -> None:
        """Process everything queued so far, then stop the thread."""
        self.queue.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (bounce_message_id := self.queue.get()) is not None:
            try:
                with self.sessions() as session:
                    processing.process_message(session, self.settings, bounce_message_id, utcnow())
            except Exception:
                # The message stays stored with processed_at NULL, and processing is
                # idempotent: a later sweep retries it. One bad message must not stop the rest.
                self.failed += 1
                log.exception("processing bounce message %s failed", bounce_message_id)


class _TolerantSMTP(SMTP):
    # RFC 5321 caps lines at 1000 octets, but broken MTAs and spam send longer ones. Refusing
    # (500) would lose a bounce we could still keep for a person to read, so the only limit
    # that applies is the message size.
    line_length_limit = MAX_MESSAGE_BYTES


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _TolerantSMTP(self.handler, **self.SMTP_kwargs)


@dataclass(frozen=True, slots=True)
class Receiver:
    host: str
    port: int
    handler: BounceHandler


@contextmanager
def running_receiver(
    settings: Settings,
    handoff: Handoff,
    *,
    sessions: SessionFactory,
    host: str = "127.0.0.1",
    port: int = 2525,
) -> Iterator[Receiver]:
    """Serve SMTP on ``host:port`` until the block ends; each message is stored and committed
    in a transaction of ``sessions`` before its 250."""
    handler = BounceHandler(settings, sessions, handoff)
    controller = _Controller(
        handler,
        hostname=host,
        port=port,
        server_hostname=settings.bounce_address.domain,
        data_size_limit=MAX_MESSAGE_BYTES,  # aiosmtpd answers 552 past it
        enable_SMTPUTF8=True,
    )
    try:
        controller.start()
    except OSError as exc:  # the port is taken, or below 1024 without the right to bind it
        handler.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        yield Receiver(host, port, handler)
    finally:
        controller.stop()
        handler.close()
