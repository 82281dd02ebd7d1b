"""Who a campaign mails: its audience, turned into one pending ledger row per recipient.

The audience is the suppression rule (``suppression.mailable``) applied to the campaign's lists,
narrowed by its segment's filter when it has one; ``create_deliveries`` writes it into the
ledger in one statement when the campaign starts.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Select,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from newsletter.delivery.models import Campaign, Delivery, DeliveryStatus
from newsletter.delivery.suppression import delivery_mailable, mailable
from newsletter.subscribers.expression import parse_expression
from newsletter.subscribers.models import Subscriber
from newsletter.subscribers.segments import condition


def key(list_ids: list[int], segment_id: int | None) -> str:
    """The audience as one comparable value, the same whatever order the lists were given in.

    A segment is its own audience (a filter over its one list), so sending to the segment and
    then to the whole list are two audiences.
    """
    if segment_id is not None:
        return f"segment:{segment_id}"
    return "lists:" + ",".join(str(n) for n in sorted(set(list_ids)))


def email_domain(session: Session, email: ColumnExpressionArgument[str]) -> ColumnElement[str]:
    """The part after the @, in SQL (PostgreSQL and SQLite spell it differently)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.lower(func.split_part(email, "@", 2))
    return func.lower(func.substr(email, func.instr(email, "@") + 1))


def audience(campaign: Campaign) -> Select[int]:
    """Ids of who the campaign mails: mailable on its lists (each once), within its segment."""
    query = select(Subscriber.id).where(mailable(Subscriber.id, literal(campaign.id)))
    if campaign.segment is not None:
        query = query.where(condition(parse_expression(campaign.segment.expression)))
    return query


# Who has, or is about to have, the message: sending to them again is a second copy.
_RECEIVING = (
    DeliveryStatus.SENT,
    DeliveryStatus.POSSIBLY_SENT,
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.DEFERRED,
)


def repeat_recipients(session: Session, issue_id: int, audience_key: str) -> int:
    """How many people still on the audience got (or are getting) the issue from it already.

    Counted over the earlier rounds' ledger rows, with the suppression rule of their own
    campaign: that campaign had the same lists, so it is who a new round would mail again.
    """
    earlier = select(Campaign.id).where(
        Campaign.issue_id == issue_id, Campaign.audience_key == audience_key
    )
    query = select(func.count(func.distinct(Delivery.subscriber_id))).where(
        Delivery.campaign_id.in_(earlier),
        Delivery.status.in_(_RECEIVING),
        delivery_mailable(),
    )
    return session.scalar(query) or 0


def create_deliveries(session: Session, campaign: Campaign, now: dt.datetime) -> None:
    """Add one pending row per recipient of the audience, each once.

    One INSERT … SELECT: the database streams it, so memory stays flat whatever the list size.
    Rows that exist already (a restarted start) are left alone.
    """
    recipients = audience(campaign).subquery()
    already = select(Delivery.subscriber_id).where(
        Delivery.campaign_id == campaign.id, Delivery.subscriber_id.is_not(None)
    )
    rows = (
        select(
            literal(campaign.id),
            Subscriber.id,
            email_domain(session, Subscriber.email),
            literal(DeliveryStatus.PENDING, Delivery.status.type),
            literal(0),
            literal(now, Delivery.created_at.type),
            literal(now, Delivery.updated_at.type),
        )
        .join(recipients, recipients.c.id == Subscriber.id)
        .where(Subscriber.id.not_in(already))
        .order_by(Subscriber.id)
    )
    columns = [
        "campaign_id",
        "subscriber_id",
        "domain",
        "status",
        "attempts",
        "created_at",
        "updated_at",
    ]
    session.execute(insert(Delivery).from_select(columns, rows))
