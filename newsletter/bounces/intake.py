"""Bounce intake: store a raw inbound message once, before the source is acknowledged.

Record first, decide second, acknowledge last: a source (the SMTP receiver, the mailbox poller,
``bounces process FILE``) calls ``record_raw`` and commits before it acknowledges the message;
``processing.process_message`` runs later and may run any number of times. A crash in between
can then only make the source deliver the message again, which the SHA-256 dedupe stores once;
it can never lose one. Every function takes the session first and never commits: the source's
edge (the receiver's transaction per message, the CLI command) owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
from email.parser import BytesHeaderParser

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from newsletter.bounces.event import BounceSource, normalise_address, storable
from newsletter.bounces.models import BounceMessage
from newsletter.bounces.parse import MAX_MESSAGE_BYTES
from newsletter.db import utcnow
from newsletter.errors import InvalidInput, NotFound

_HEADER_PARSER = BytesHeaderParser(policy=email.policy.compat32)


def message_digest(raw: bytes, envelope_rcpt: str | None) -> str:
    """The dedupe key: the same bytes to the same (VERP) address are the same bounce."""
    rcpt = (envelope_rcpt or "").strip().lower().encode("utf-8", "replace")
    return hashlib.sha256(rcpt + b"\0" + raw).hexdigest()


def record_raw(
    session: Session,
    raw: bytes,
    *,
    source: BounceSource,
    envelope_rcpt: str | None,
    now: dt.datetime | None = None,
) -> BounceMessage:
    """Store one inbound message unless it is already stored; return its row (flushed).

    Two receivers or pollers may store the same message at the same moment: the loser of the
    race gets the winner's row, so the message is processed once. A message over the size
    limit of the SMTP receiver is refused here too, whatever its source (file, mailbox, webhook).
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidInput(f"a bounce message over {MAX_MESSAGE_BYTES} bytes is not stored")
    digest = message_digest(raw, envelope_rcpt)
    values = {
        "sha256": digest,
        "raw": raw,
        "size": len(raw),
        "source": source,
        "envelope_rcpt": storable((envelope_rcpt or "").strip().lower(), 320),
        "received_at": now or utcnow(),
    }
    # INSERT … ON CONFLICT DO NOTHING rather than a savepoint around a plain INSERT: the race
    # between two intakes is settled by the unique index, and the common case is one statement.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted = session.scalar(
        insert(BounceMessage)
        .values(values)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(BounceMessage.id)
    )
    message = (
        session.get(BounceMessage, inserted)
        if inserted is not None
        else session.scalar(select(BounceMessage).where(BounceMessage.sha256 == digest))
    )
    if message is None:  # pragma: no cover - the conflicting row cannot vanish mid-transaction
        raise NotFound(f"bounce message {digest} disappeared while being stored")
    return message


def envelope_rcpt_from_headers(raw: bytes) -> str | None:
    """The address a stored message was delivered to: Delivered-To, X-Original-To, else To.

    The delivering MTA adds the first two on top, so the first one found is the final one.
    """
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    try:
        headers = _HEADER_PARSER.parsebytes(head + b"\n\n")
        for name in ("Delivered-To", "X-Original-To", "To"):
            value = headers.get(name)
            address = normalise_address(str(value)) if value is not None else None
            if address:
                return address
    except Exception:
        # Headers are attacker-controlled; an unreadable one means "no envelope known",
        # and the parser will then quarantine the message as it sees fit.
        return None
    return None


def pending_message_ids(session: Session, limit: int = 1000) -> list[int]:
    """Stored messages not processed yet (e.g. the process died after storing them)."""
    return list(
        session.scalars(
            select(BounceMessage.id)
            .where(BounceMessage.processed_at.is_(None))
            .order_by(BounceMessage.id)
            .limit(limit)
        )
    )
