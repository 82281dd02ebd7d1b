"""Bounce figures: counts by kind and by recipient domain, bounce and complaint rates.

``campaign_bounce_summary`` is what ``newsletter campaign status`` shows for one campaign;
``bounce_report`` is ``newsletter bounces report`` (one campaign, or every event stored).
Rates are per message the relay accepted or refused ("attempted"): sent, bounced later or
at once, or possibly sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, distinct, func, select
from sqlalchemy.orm import Session

from newsletter.bounces.event import BounceKind, Evidence
from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.bounces.policy import ACTIONABLE_KINDS, CampaignRates
from newsletter.delivery.models import Delivery, DeliveryStatus

ATTEMPTED = (DeliveryStatus.SENT, DeliveryStatus.BOUNCED, DeliveryStatus.POSSIBLY_SENT)
TOP_DOMAINS = 20


def campaign_rates(session: Session, campaign_id: int) -> CampaignRates:
    """Attempted messages, distinct hard-bounced deliveries, distinct complainers."""
    sent = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(ATTEMPTED))
    )
    hard = session.scalar(
        select(func.count(distinct(BounceEventRecord.delivery_id))).where(
            BounceEventRecord.campaign_id == campaign_id,
            BounceEventRecord.kind == BounceKind.HARD,
        )
    )
    complaints = session.scalar(
        select(func.count(distinct(BounceEventRecord.subscriber_id))).where(
            BounceEventRecord.campaign_id == campaign_id,
            BounceEventRecord.kind == BounceKind.COMPLAINT,
        )
    )
    return CampaignRates(sent=sent or 0, hard_bounces=hard or 0, complaints=complaints or 0)


def campaign_bounce_summary(session: Session, campaign_id: int) -> dict[str, Any]:
    """Bounce counts and rates for one campaign, as a JSON-able document."""
    rates = campaign_rates(session, campaign_id)
    return {
        "campaign": campaign_id,
        "sent": rates.sent,
        "by_kind": _by_kind(session, campaign_id),
        "hard_bounces": rates.hard_bounces,
        "complaints": rates.complaints,
        "hard_bounce_rate": round(rates.hard_bounce_rate, 6),
        "complaint_rate": round(rates.complaint_rate, 6),
    }


def awaiting_review() -> ColumnElement[bool]:
    """Events that would change a subscriber, have no evidence, and nobody has applied yet."""
    return and_(
        BounceEventRecord.evidence == Evidence.NONE,
        BounceEventRecord.reviewed_at.is_(None),
        BounceEventRecord.kind.in_(ACTIONABLE_KINDS),
    )


def bounce_report(session: Session, campaign_id: int | None = None) -> dict[str, Any]:
    """Counts by kind, by domain (the top ones) and by evidence, plus rates for a campaign.

    ``unverified`` counts the events no evidence ties to a message we sent that still wait for
    a person (``bounces review``); they never count toward a campaign's rates.
    """
    document: dict[str, Any] = {
        "by_kind": _by_kind(session, campaign_id),
        "by_domain": _by_domain(session, campaign_id),
        "by_evidence": _by_evidence(session, campaign_id),
    }
    if campaign_id is None:
        document["unverified"] = session.scalar(
            select(func.count()).select_from(BounceEventRecord).where(awaiting_review())
        )
        document["messages"] = session.scalar(select(func.count()).select_from(BounceMessage))
        document["unprocessed"] = session.scalar(
            select(func.count())
            .select_from(BounceMessage)
            .where(BounceMessage.processed_at.is_(None))
        )
    else:
        document = {**campaign_bounce_summary(session, campaign_id), **document}
    return document


def _by_kind(session: Session, campaign_id: int | None) -> dict[str, int]:
    query = select(BounceEventRecord.kind, func.count()).group_by(BounceEventRecord.kind)
    if campaign_id is not None:
        query = query.where(BounceEventRecord.campaign_id == campaign_id)
    counts = {kind.value: 0 for kind in BounceKind}
    for kind, count in session.execute(query):
        counts[BounceKind(kind).value] = count
    return counts


def _by_evidence(session: Session, campaign_id: int | None) -> dict[str, int]:
    query = select(BounceEventRecord.evidence, func.count()).group_by(BounceEventRecord.evidence)
    if campaign_id is not None:
        query = query.where(BounceEventRecord.campaign_id == campaign_id)
    counts = {evidence.value: 0 for evidence in Evidence}
    for evidence, count in session.execute(query):
        counts[Evidence(evidence).value] = count
    return counts


def _by_domain(session: Session, campaign_id: int | None) -> dict[str, dict[str, int]]:
    """Per recipient domain: events of each kind (policy ones are the domain alerts)."""
    query = (
        select(BounceEventRecord.domain, BounceEventRecord.kind, func.count())
        .where(BounceEventRecord.domain.is_not(None))
        .group_by(BounceEventRecord.domain, BounceEventRecord.kind)
    )
    if campaign_id is not None:
        query = query.where(BounceEventRecord.campaign_id == campaign_id)
    domains: dict[str, dict[str, int]] = {}
    for domain, kind, count in session.execute(query):
        domains.setdefault(str(domain), {})[BounceKind(kind).value] = count
    ranked = sorted(domains.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return dict(ranked[:TOP_DOMAINS])
