"""Bounce processing: parse → match on evidence → decide → apply, for every source.

``process_message`` handles a stored inbound message (the receiver's worker thread, a Celery
worker, or the CLI right away) and may run any number of times: the second time it returns
what the first one did and changes nothing. ``process_webhook_events`` handles the events of a
provider webhook whose signature the web layer has verified. ``BounceRejections`` handles the
relay's own replies while sending (BNC-05). Each goes through ``matching`` (no evidence: the
event is stored, never applied) and the pure ``policy``. Every function takes the session
first and never commits; the ``process_bounce`` job in ``newsletter/jobs.py`` owns the
transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from newsletter.bounces.classify import event_from_smtp_reply
from newsletter.bounces.event import (
    STATUS_CHANGE_SOURCE,
    BounceEvent,
    BounceKind,
    BounceSource,
    Evidence,
    storable,
)
from newsletter.bounces.matching import Match, match_returned, match_webhook
from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.bounces.parse import parse_bounce
from newsletter.bounces.policy import (
    BounceAction,
    Decision,
    History,
    PastBounce,
    decide,
    pause_reason,
    unverified,
)
from newsletter.bounces.report import campaign_rates
from newsletter.config import Settings
from newsletter.db import get_or_raise, utcnow
from newsletter.delivery import ledger
from newsletter.delivery.context import RejectionHandler
from newsletter.delivery.ledger import Claimed
from newsletter.delivery.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.delivery.verdict import SmtpReply
from newsletter.subscribers.audit import change_status, last_made_active
from newsletter.subscribers.consent import unsubscribe
from newsletter.subscribers.models import ConsentSource, Subscriber

log = logging.getLogger(__name__)

# Kinds that say the message did not reach the mailbox: a delivery with one of these is not
# a "successful delivery" that resets the soft-bounce count.
FAILED_KINDS = (BounceKind.HARD, BounceKind.SOFT, BounceKind.POLICY)


@dataclass(frozen=True, slots=True)
class ProcessedEvent:
    """One event and what the policy did with it (one line of ``bounces process --json``)."""

    event_id: int
    kind: BounceKind
    email: str | None
    subscriber_id: int | None
    delivery_id: int | None
    campaign_id: int | None
    status: str | None
    evidence: Evidence
    action: BounceAction
    reason: str

    def as_document(self) -> dict[str, Any]:
        return {
            "event": self.event_id,
            "kind": self.kind.value,
            "email": self.email,
            "delivery": self.delivery_id,
            "campaign": self.campaign_id,
            "status": self.status,
            "evidence": self.evidence.value,
            "action": self.action.value,
            "reason": self.reason,
        }


def process_message(
    session: Session, settings: Settings, bounce_message_id: int, now: dt.datetime
) -> list[ProcessedEvent]:
    """Parse a stored message and apply the policy to each event; idempotent."""
    # The row lock makes two workers given the same id take turns; the second sees
    # processed_at and returns the first one's results.
    message = get_or_raise(
        session,
        BounceMessage,
        bounce_message_id,
        f"no bounce message with id {bounce_message_id}",
        with_for_update=True,
    )
    if message.processed_at is not None:
        return stored_events(session, bounce_message_id)
    events = parse_bounce(message.raw, message.envelope_rcpt)
    results = [
        apply(
            session,
            settings,
            event,
            match_returned(session, settings, event, reports_in_message=len(events)),
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


def process_webhook_events(
    session: Session, settings: Settings, events: Sequence[BounceEvent], now: dt.datetime
) -> list[ProcessedEvent]:
    """Apply the events of one provider webhook request. Call only after its ``verify`` passed.

    An event counts as evidence (``webhook``) only when it names a message we sent, by our
    Message-ID or the relay's queue id; otherwise it is stored unverified. An event with a
    provider id seen before returns the stored result, so a webhook the provider retried
    changes nothing. (Without an id nothing can tell a retry.)
    """
    results = []
    for event in events:
        source_id = f"{event.classifier}:{event.source_id}"[:255] if event.source_id else None
        if source_id is not None:
            known = session.scalar(
                select(BounceEventRecord).where(BounceEventRecord.source_id == source_id)
            )
            if known is not None:
                results.append(_processed(known))
                continue
        match = match_webhook(session, settings, event)
        results.append(
            apply(
                session,
                settings,
                event,
                match,
                source=BounceSource.WEBHOOK,
                now=now,
                source_id=source_id,
            )
        )
    check_campaigns(session, settings, results, now)
    return results


def stored_events(session: Session, bounce_message_id: int) -> list[ProcessedEvent]:
    records = session.scalars(
        select(BounceEventRecord)
        .where(BounceEventRecord.bounce_message_id == bounce_message_id)
        .order_by(BounceEventRecord.position)
    )
    return [_processed(record) for record in records]


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
    decision = unverified(event) if match.evidence is Evidence.NONE else None
    subscriber = None
    if decision is None:
        subscriber = session.get(Subscriber, match.subscriber_id) if match.subscriber_id else None
        history = (
            history_for(session, subscriber, now, current_delivery_id=match.delivery_id)
            if subscriber is not None
            else None
        )
        decision = decide(history, event, settings, now, campaign_id=match.campaign_id)
    if subscriber is not None:
        carry_out(session, subscriber, decision, source, now)
    if decision.delivery_bounced and match.delivery_id is not None:
        ledger.mark_bounced(session, match.delivery_id, now)
    email = event.recipient or (subscriber.email if subscriber is not None else None)
    domain = email.rpartition("@")[2] if email and "@" in email else None
    if decision.flag_domain:
        # A reputation or content refusal: nothing to do for the address; a person should look
        # at the domain. The report counts these per domain.
        log.warning("policy rejection from %s: %s %s", domain, event.status, event.diagnostic)
    record = BounceEventRecord(
        bounce_message_id=bounce_message_id,
        position=position,
        source_id=source_id,
        source=source,
        subscriber_id=match.subscriber_id,
        delivery_id=match.delivery_id,
        campaign_id=match.campaign_id,
        kind=event.kind,
        recipient=storable(email, 320),
        domain=storable(domain, 255),
        status=storable(event.status, 16),
        diagnostic=storable(event.diagnostic),
        classifier=event.classifier[:32],
        evidence=match.evidence,
        action=decision.action,
        reason=decision.reason,
        created_at=now,
    )
    session.add(record)
    session.flush()
    return _processed(record)


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
    # Made active again (reinstated, reactivated by an import): the count starts afresh.
    reactivated = last_made_active(session, subscriber.id)
    resets = [t for t in (session.scalar(success), reactivated) if t is not None]
    return History(subscriber.status, bounces, max(resets) if resets else None)


def carry_out(
    session: Session,
    subscriber: Subscriber,
    decision: Decision,
    source: BounceSource,
    now: dt.datetime,
    by: str | None = None,
) -> None:
    if decision.new_status is not None:
        change_status(
            session,
            subscriber,
            decision.new_status,
            reason=decision.reason,
            source=STATUS_CHANGE_SOURCE[source],
            now=now,
            by=by,
        )
    if decision.unsubscribe_all:
        # Status first: unsubscribe() would otherwise make them merely "unsubscribed". It
        # still ends every subscription and writes the consent event.
        unsubscribe(session, subscriber.id, list_id=None, source=ConsentSource.EMAIL, now=now)


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
            campaign.transition(CampaignStatus.PAUSED, f"paused automatically: {reason}", at=now)
            log.warning("campaign %s paused: %s", campaign_id, reason)
            paused.append(campaign_id)
    session.flush()
    return paused


class BounceRejections(RejectionHandler):
    """The relay's hard, soft and policy replies while sending (BNC-05), through the same policy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def rejected(self, session: Session, claimed: Claimed, reply: SmtpReply) -> None:
        # One event per attempt and verdict: a flush that is retried records nothing twice,
        # and a row retried after `campaign resume` (attempts start again) still reports.
        source_id = f"sync:{claimed.delivery_id}:{claimed.attempts}:{reply.verdict.value}"
        if session.scalar(
            select(BounceEventRecord.id).where(BounceEventRecord.source_id == source_id)
        ):
            return
        now = utcnow()
        result = apply(
            session,
            self.settings,
            event_from_smtp_reply(claimed.email, reply),
            Match(Evidence.SMTP, claimed.subscriber_id, claimed.delivery_id, claimed.campaign_id),
            source=BounceSource.SYNC,
            now=now,
            source_id=source_id,
        )
        check_campaigns(session, self.settings, [result], now)


def _processed(record: BounceEventRecord) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=record.id,
        kind=record.kind,
        email=record.recipient,
        subscriber_id=record.subscriber_id,
        delivery_id=record.delivery_id,
        campaign_id=record.campaign_id,
        status=record.status,
        evidence=record.evidence,
        action=record.action,
        reason=record.reason,
    )


def _summary(results: Sequence[ProcessedEvent]) -> str:
    counts = Counter(f"{r.kind.value}: {r.action.value}" for r in results)
    return ", ".join(f"{key} ×{n}" if n > 1 else key for key, n in sorted(counts.items()))
