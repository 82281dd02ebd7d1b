"""Bounce use cases: record a raw message, process it (parse → match → decide → apply), reinstate.

Record first, decide second, acknowledge last (style §6): a source calls ``record_raw`` and
commits before it acknowledges the message; ``process_message`` runs later (in the receiver's
worker thread, on a Celery worker, or right away from the CLI) and may run any number of times:
the second time it returns what the first one did and changes nothing. Every function takes the
session first and never commits; ``process_stored`` is the job wrapper that owns its session.

Synchronous 5xx replies from our relay go through the same policy via ``BounceRejections``,
which the send loop calls in the transaction that records the ``bounced`` delivery row.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from newsletter.bounces.classify import event_from_smtp_reply
from newsletter.bounces.event import BounceEvent, BounceKind, normalise_address
from newsletter.bounces.models import (
    BounceEventRecord,
    BounceMessage,
    BounceSource,
    SubscriberStatusChange,
)
from newsletter.bounces.parse import MAX_MESSAGE_BYTES, parse_bounce
from newsletter.bounces.policy import (
    BounceAction,
    Decision,
    History,
    PastBounce,
    decide,
    pause_reason,
)
from newsletter.bounces.report import campaign_rates
from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.delivery.ledger import Claimed, Outcome
from newsletter.delivery.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.delivery.sender import RejectionHandler
from newsletter.delivery.verp import delivery_id_from_verp
from newsletter.errors import InvalidInput, NotFound
from newsletter.subscribers.consent import unsubscribe
from newsletter.subscribers.models import (
    ConsentSource,
    Subscriber,
    SubscriberStatus,
)
from newsletter.subscribers.service import find_subscriber

log = logging.getLogger(__name__)

# Kinds that say the message did not reach the mailbox: a delivery with one of these is not
# a "successful delivery" that resets the soft-bounce count.
FAILED_KINDS = (BounceKind.HARD, BounceKind.SOFT, BounceKind.POLICY)
_HEADER_PARSER = BytesHeaderParser(policy=email.policy.compat32)
_REPLY = re.compile(r"\s*(\d{3})\b[\s-]*(.*)", re.DOTALL)
# What a hostile report may put in a field that PostgreSQL refuses (NUL) or that has no place in
# text (other controls); the raw message keeps the original.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _storable(text: str | None, limit: int | None = None) -> str | None:
    """``text`` as both databases store it alike: controls removed, cut at the column width."""
    return (_CONTROL.sub("", text)[:limit] or None) if text else None


@dataclass(frozen=True, slots=True)
class Match:
    """Whom an event is about; any part may be unknown."""

    subscriber_id: int | None = None
    delivery_id: int | None = None
    campaign_id: int | None = None


@dataclass(frozen=True, slots=True)
class ProcessedEvent:
    """One event and what the policy did with it (one line of ``bounces process --json``)."""

    kind: BounceKind
    email: str | None
    subscriber_id: int | None
    delivery_id: int | None
    campaign_id: int | None
    status: str | None
    action: BounceAction
    reason: str

    def as_document(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "email": self.email,
            "delivery": self.delivery_id,
            "campaign": self.campaign_id,
            "status": self.status,
            "action": self.action.value,
            "reason": self.reason,
        }


# --- intake ----------------------------------------------------------------------------------


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
        "envelope_rcpt": _storable((envelope_rcpt or "").strip().lower(), 320),
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


def store_committed(
    settings: Settings, raw: bytes, *, source: BounceSource, envelope_rcpt: str | None
) -> int:
    """Intake for pollers: store one message in its own transaction, committed on return."""
    with session_scope(settings) as session:
        message = record_raw(session, raw, source=source, envelope_rcpt=envelope_rcpt)
        session.flush()
        return message.id


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


# --- processing ------------------------------------------------------------------------------


def process_message(
    session: Session, settings: Settings, bounce_message_id: int, now: dt.datetime
) -> list[ProcessedEvent]:
    """Parse a stored message and apply the policy to each event; idempotent."""
    # The row lock makes two workers given the same id take turns; the second sees
    # processed_at and returns the first one's results.
    message = session.get(BounceMessage, bounce_message_id, with_for_update=True)
    if message is None:
        raise NotFound(f"no bounce message with id {bounce_message_id}")
    if message.processed_at is not None:
        return stored_events(session, bounce_message_id)
    events = parse_bounce(message.raw, message.envelope_rcpt)
    results = [
        apply(
            session,
            settings,
            event,
            match_event(session, settings, event),
            source=message.source,
            now=now,
            bounce_message_id=message.id,
            position=position,
        )
        for position, event in enumerate(events)
    ]
    message.processed_at = now
    message.outcome = _summary(results) if results else "no failures reported"
    check_campaigns(session, settings, results, now)
    session.flush()
    return results


def process_events(
    session: Session,
    settings: Settings,
    events: Sequence[BounceEvent],
    source: BounceSource,
    now: dt.datetime,
) -> list[ProcessedEvent]:
    """Apply events that came without a stored message (provider webhooks).

    An event with a provider ``source_id`` seen before returns the stored result, so a
    webhook the provider retried changes nothing. (Without an id nothing can tell a retry.)
    """
    results = []
    for event in events:
        source_id = f"{source.value}:{event.source_id}"[:255] if event.source_id else None
        if source_id is not None:
            known = session.scalar(
                select(BounceEventRecord).where(BounceEventRecord.source_id == source_id)
            )
            if known is not None:
                results.append(_processed(known))
                continue
        match = match_event(session, settings, event)
        results.append(
            apply(session, settings, event, match, source=source, now=now, source_id=source_id)
        )
    check_campaigns(session, settings, results, now)
    return results


def process_stored(settings: Settings, bounce_message_id: int) -> dict[str, Any]:
    """The ``process_bounce`` job: process one stored message in its own transaction."""
    with session_scope(settings) as session:
        results = process_message(session, settings, bounce_message_id, utcnow())
    return {
        "message": bounce_message_id,
        "events": len(results),
        "actions": dict(Counter(r.action.value for r in results)),
    }


def stored_events(session: Session, bounce_message_id: int) -> list[ProcessedEvent]:
    records = session.scalars(
        select(BounceEventRecord)
        .where(BounceEventRecord.bounce_message_id == bounce_message_id)
        .order_by(BounceEventRecord.position)
    )
    return [_processed(record) for record in records]


def match_event(session: Session, settings: Settings, event: BounceEvent) -> Match:
    """Find the delivery and subscriber: VERP token, then Message-ID, then the address."""
    if event.envelope_rcpt:
        delivery_id = delivery_id_from_verp(
            event.envelope_rcpt, settings.bounce_address, settings.secret_key
        )
        if delivery_id is not None:
            delivery = session.get(Delivery, delivery_id)
            if delivery is not None:
                return Match(delivery.subscriber_id, delivery.id, delivery.campaign_id)
    if event.original_message_id:
        delivery = session.scalar(
            select(Delivery).where(Delivery.message_id == event.original_message_id).limit(1)
        )
        if delivery is not None:
            return Match(delivery.subscriber_id, delivery.id, delivery.campaign_id)
    if event.recipient:
        # Weakest evidence (anyone can mail us a DSN naming an address); a VERP token or a
        # Message-ID we generated is preferred above.
        subscriber_id = session.scalar(
            select(Subscriber.id).where(Subscriber.email == event.recipient)
        )
        if subscriber_id is not None:
            return Match(subscriber_id)
    return Match()


def apply(
    session: Session,
    settings: Settings,
    event: BounceEvent,
    match: Match,
    *,
    source: BounceSource,
    now: dt.datetime,
    bounce_message_id: int | None = None,
    position: int = 0,
    source_id: str | None = None,
) -> ProcessedEvent:
    """Decide on one event and carry the decision out; writes the event row and any audit."""
    subscriber = session.get(Subscriber, match.subscriber_id) if match.subscriber_id else None
    history = (
        history_for(session, subscriber, now, current_delivery_id=match.delivery_id)
        if subscriber is not None
        else None
    )
    decision = decide(history, event, settings, now, campaign_id=match.campaign_id)
    if subscriber is not None:
        _carry_out(session, subscriber, decision, source, now)
    if decision.delivery_bounced and match.delivery_id is not None:
        session.execute(
            update(Delivery)
            .where(
                Delivery.id == match.delivery_id,
                Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.POSSIBLY_SENT]),
            )
            .values(status=DeliveryStatus.BOUNCED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    email = event.recipient or (subscriber.email if subscriber is not None else None)
    domain = email.rpartition("@")[2] if email and "@" in email else None
    if decision.flag_domain:
        # A reputation or content refusal: nothing to do for the address; a person should look
        # at the domain. The report counts these per domain.
        log.warning("policy rejection from %s: %s %s", domain, event.status, event.diagnostic)
    session.add(
        BounceEventRecord(
            bounce_message_id=bounce_message_id,
            position=position,
            source_id=source_id,
            source=source,
            subscriber_id=match.subscriber_id,
            delivery_id=match.delivery_id,
            campaign_id=match.campaign_id,
            kind=event.kind,
            recipient=_storable(email, 320),
            domain=_storable(domain, 255),
            status=_storable(event.status, 16),
            diagnostic=_storable(event.diagnostic),
            classifier=event.classifier[:32],
            action=decision.action,
            reason=decision.reason,
            created_at=now,
        )
    )
    session.flush()
    return ProcessedEvent(
        kind=event.kind,
        email=email,
        subscriber_id=match.subscriber_id,
        delivery_id=match.delivery_id,
        campaign_id=match.campaign_id,
        status=event.status,
        action=decision.action,
        reason=decision.reason,
    )


def history_for(
    session: Session,
    subscriber: Subscriber,
    now: dt.datetime,
    *,
    current_delivery_id: int | None = None,
) -> History:
    """What the policy needs about ``subscriber``: earlier soft bounces and the last reset."""
    bounces = [
        PastBounce(kind, at, campaign_id)
        for kind, at, campaign_id in session.execute(
            select(
                BounceEventRecord.kind, BounceEventRecord.created_at, BounceEventRecord.campaign_id
            )
            .where(
                BounceEventRecord.subscriber_id == subscriber.id,
                BounceEventRecord.kind == BounceKind.SOFT,
            )
            .order_by(BounceEventRecord.created_at)
        )
    ]
    # A delivery the relay accepted and nobody has reported as failed counts as a success.
    # The delivery the current event is about is not one, whatever its row says yet.
    failed = exists().where(
        BounceEventRecord.delivery_id == Delivery.id,
        BounceEventRecord.kind.in_(FAILED_KINDS),
    )
    success = select(func.max(Delivery.sent_at)).where(
        Delivery.subscriber_id == subscriber.id,
        Delivery.status == DeliveryStatus.SENT,
        ~failed,
    )
    if current_delivery_id is not None:
        success = success.where(Delivery.id != current_delivery_id)
    reinstated = select(func.max(SubscriberStatusChange.at)).where(
        SubscriberStatusChange.subscriber_id == subscriber.id,
        SubscriberStatusChange.new == SubscriberStatus.ACTIVE,
    )
    resets = [t for t in (session.scalar(success), session.scalar(reinstated)) if t is not None]
    return History(subscriber.status, bounces, max(resets) if resets else None)


def change_status(
    session: Session,
    subscriber: Subscriber,
    new: SubscriberStatus,
    *,
    reason: str,
    source: BounceSource,
    now: dt.datetime,
    by: str | None = None,
) -> SubscriberStatusChange:
    """The one way this stage changes a subscriber's status: always with an audit row."""
    old = subscriber.status
    subscriber.transition(new)  # InvalidTransition for a change the lifecycle forbids
    subscriber.updated_at = now
    change = SubscriberStatusChange(
        subscriber_id=subscriber.id, old=old, new=new, reason=reason, source=source, by=by, at=now
    )
    session.add(change)
    session.flush()
    return change


def reinstate(session: Session, email: str, now: dt.datetime, by: str) -> SubscriberStatusChange:
    """Make a bounced (or complained...) subscriber active again, with an audit row.

    Soft bounces from before this moment stop counting. Lists a complaint unsubscribed them
    from stay unsubscribed: that needs their own new consent.
    """
    subscriber = find_subscriber(session, email)
    return change_status(
        session,
        subscriber,
        SubscriberStatus.ACTIVE,
        reason=f"reinstated by {by} (was {subscriber.status.value})",
        source=BounceSource.ADMIN,
        now=now,
        by=by,
    )


def check_campaigns(
    session: Session, settings: Settings, results: Iterable[ProcessedEvent], now: dt.datetime
) -> list[int]:
    """Pause sending campaigns whose complaint or hard-bounce rate is now too high."""
    paused = []
    touched = {
        r.campaign_id
        for r in results
        if r.campaign_id is not None and r.kind in (BounceKind.HARD, BounceKind.COMPLAINT)
    }
    for campaign_id in sorted(touched):
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None or campaign.status is not CampaignStatus.SENDING:
            continue  # a finished campaign cannot be paused; the report still shows its rates
        reason = pause_reason(campaign_rates(session, campaign_id), settings)
        if reason is not None:
            campaign.transition(CampaignStatus.PAUSED, f"paused automatically: {reason}")
            log.warning("campaign %s paused: %s", campaign_id, reason)
            paused.append(campaign_id)
    session.flush()
    return paused


class BounceRejections(RejectionHandler):
    """Synchronous 5xx from the relay (BNC-05), through the same policy as a DSN."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def rejected(self, session: Session, claimed: Claimed, outcome: Outcome) -> None:
        source_id = f"sync:{claimed.delivery_id}"
        if session.scalar(
            select(BounceEventRecord.id).where(BounceEventRecord.source_id == source_id)
        ):
            return
        code, text = _split_reply(outcome.reply or "")
        if outcome.enhanced_status and outcome.enhanced_status not in text:
            text = f"{outcome.enhanced_status} {text}"
        event = event_from_smtp_reply(claimed.email, code, text)
        now = utcnow()
        result = apply(
            session,
            self.settings,
            event,
            Match(claimed.subscriber_id, claimed.delivery_id, claimed.campaign_id),
            source=BounceSource.SYNC,
            now=now,
            source_id=source_id,
        )
        check_campaigns(session, self.settings, [result], now)


def _split_reply(reply: str) -> tuple[int, str]:
    match = _REPLY.match(reply)
    if match is None:
        return 550, reply  # the ledger only calls us for a permanent failure
    return int(match.group(1)), match.group(2).strip()


def _carry_out(
    session: Session,
    subscriber: Subscriber,
    decision: Decision,
    source: BounceSource,
    now: dt.datetime,
) -> None:
    if decision.new_status is not None:
        change_status(
            session, subscriber, decision.new_status, reason=decision.reason, source=source, now=now
        )
    if decision.unsubscribe_all:
        # Status first: unsubscribe() would otherwise make them merely "unsubscribed". It
        # still ends every subscription and writes the consent event.
        unsubscribe(session, subscriber.id, list_id=None, source=ConsentSource.EMAIL, now=now)


def _processed(record: BounceEventRecord) -> ProcessedEvent:
    return ProcessedEvent(
        kind=record.kind,
        email=record.recipient,
        subscriber_id=record.subscriber_id,
        delivery_id=record.delivery_id,
        campaign_id=record.campaign_id,
        status=record.status,
        action=record.action,
        reason=record.reason,
    )


def _summary(results: Sequence[ProcessedEvent]) -> str:
    counts = Counter(f"{r.kind.value}: {r.action.value}" for r in results)
    return ", ".join(f"{key} ×{n}" if n > 1 else key for key, n in sorted(counts.items()))


def forget_subscriber(session: Session, subscriber_id: int, email: str) -> int:
    """Erasure (GDPR Art. 17, LAW-06): drop every bounce record that names the subscriber.

    Their events and the raw messages those events came from (a DSN quotes the address) go;
    the status audit trail goes with the subscriber row (ON DELETE CASCADE). Campaign-wide
    counts lose those rows too. Returns how many events were removed.
    """
    events = list(
        session.scalars(
            select(BounceEventRecord).where(
                or_(
                    BounceEventRecord.subscriber_id == subscriber_id,
                    BounceEventRecord.recipient == email.lower(),
                )
            )
        )
    )
    message_ids = {e.bounce_message_id for e in events if e.bounce_message_id is not None}
    for event in events:
        session.delete(event)
    session.flush()
    if message_ids:
        session.execute(
            delete(BounceEventRecord).where(BounceEventRecord.bounce_message_id.in_(message_ids))
        )
        session.execute(delete(BounceMessage).where(BounceMessage.id.in_(message_ids)))
    return len(events)
