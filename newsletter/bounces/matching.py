"""Whom a bounce is about, on evidence only: no stranger can bounce or unsubscribe a subscriber.

Anyone can mail our bounce address a DSN naming any address, or an ARF report claiming any
subscriber complained. So an event changes a subscriber only when it is tied to a message we
sent that subscriber, by one of (``Evidence``):

- ``verp``: the envelope recipient carries a valid VERP token of a delivery (BNC-01); a
  tampered token is no token;
- ``message-id``: the returned message (or the report's original headers) carries a
  Message-ID we generated, whose HMAC verifies, of a delivery we marked sent;
- ``webhook``: a provider webhook, already verified by its signature, names a message we sent,
  by our Message-ID or by the queue id the relay gave us for it;
- ``smtp``: the relay's reply to our own RCPT or DATA (matched by the send loop itself).

The evidence names one delivery, hence one subscriber. A report that names several recipients
acts only on that one: an event naming another address is not tied to it. (One exception: a
report with a single failure that came back to a valid VERP address is that delivery's even
when it names another address, since the subscriber's mailbox may forward elsewhere.)

Anything else matches nobody (``Evidence.NONE``): it is stored, counted and listed for a
person (``review``), never applied automatically. This follows Mailman's order (VERP first,
an address named in the body only as a hint), minus the hint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.bounces.event import BounceEvent, Evidence
from newsletter.config import Settings
from newsletter.delivery.message import delivery_of_message_id
from newsletter.delivery.models import Delivery
from newsletter.delivery.verp import delivery_id_from_verp
from newsletter.subscribers.models import Subscriber


@dataclass(frozen=True, slots=True)
class Match:
    """Whom an event is about, and the evidence for it; ``NO_MATCH`` when there is none."""

    evidence: Evidence = Evidence.NONE
    subscriber_id: int | None = None
    delivery_id: int | None = None
    campaign_id: int | None = None


NO_MATCH = Match()


def match_returned(
    session: Session, settings: Settings, event: BounceEvent, *, reports_in_message: int
) -> Match:
    """An event read from a message sent to our bounce domain (a DSN, an ARF report, …)."""
    delivery = _by_verp(session, settings, event.envelope_rcpt)
    if delivery is not None:
        forwarded = reports_in_message == 1  # the mailbox may forward to the address it names
        return _tied(session, delivery, Evidence.VERP, event, any_recipient=forwarded)
    delivery = _by_message_id(session, settings, event.original_message_id)
    if delivery is not None:
        return _tied(session, delivery, Evidence.MESSAGE_ID, event, any_recipient=False)
    return NO_MATCH


def match_webhook(session: Session, settings: Settings, event: BounceEvent) -> Match:
    """An event from a provider webhook whose signature the caller has verified."""
    delivery = _by_message_id(session, settings, event.original_message_id) or _by_queue_id(
        session, event.original_message_id
    )
    if delivery is None:
        return NO_MATCH
    return _tied(session, delivery, Evidence.WEBHOOK, event, any_recipient=False)


def _tied(
    session: Session,
    delivery: Delivery,
    evidence: Evidence,
    event: BounceEvent,
    *,
    any_recipient: bool,
) -> Match:
    """The delivery's subscriber, if the event is about them (or names nobody)."""
    if delivery.subscriber_id is None:
        return NO_MATCH  # erased since: nobody left to act on
    if event.recipient is not None and not any_recipient:
        email = session.scalar(
            select(func.lower(Subscriber.email)).where(Subscriber.id == delivery.subscriber_id)
        )
        if email != event.recipient.lower():
            return NO_MATCH
    return Match(evidence, delivery.subscriber_id, delivery.id, delivery.campaign_id)


def _by_verp(session: Session, settings: Settings, envelope_rcpt: str | None) -> Delivery | None:
    if not envelope_rcpt:
        return None
    delivery_id = delivery_id_from_verp(envelope_rcpt, settings.bounce_address, settings.secret_key)
    return session.get(Delivery, delivery_id) if delivery_id is not None else None


def _by_message_id(session: Session, settings: Settings, message_id: str | None) -> Delivery | None:
    """The delivery of one of our Message-IDs: the HMAC is checked before any lookup."""
    ours = delivery_of_message_id(message_id, settings.secret_key) if message_id else None
    if ours is None or message_id is None:
        return None
    delivery_id, campaign_id = ours
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.campaign_id != campaign_id or delivery.message_id is None:
        return None
    # Marked in flight with this very id: a message we really handed to the relay.
    return delivery if delivery.message_id.lower() == message_id.lower() else None


def _by_queue_id(session: Session, provider_id: str | None) -> Delivery | None:
    """The delivery whose relay reply carried this id (e.g. SES's message id); only if unique."""
    if not provider_id:
        return None
    queue_id = provider_id.strip().strip("<>")
    found = list(session.scalars(select(Delivery).where(Delivery.queue_id == queue_id).limit(2)))
    # Queue ids of some MTAs are reused over time: two rows with one id prove nothing.
    return found[0] if len(found) == 1 else None
