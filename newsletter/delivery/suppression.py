"""The suppression rule, written once: who may still be mailed on a campaign (MSG-13, DLV-03).

A subscriber is mailable on a campaign while they are ``active`` and their subscription to at
least one of the campaign's lists is ``confirmed``. Every other case is a suppression:
unsubscribed (from that list or everywhere), bounced, complained, blocked, erased.

The same expression decides the audience when a campaign starts, which claimed rows are
skipped, and, just before each message, whether it may still go out (the in-flight fence):
an unsubscribe or a bounce that lands mid-campaign stops the messages not yet sent. The fence's
PostgreSQL statement is compiled from it too (``fence``).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, ColumnExpressionArgument, Table, and_, exists, func, select

from newsletter.delivery.models import CampaignList, Delivery
from newsletter.subscribers.models import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)

_subscribers = cast(Table, Subscriber.__table__)
_subscriptions = cast(Table, Subscription.__table__)
_campaign_lists = cast(Table, CampaignList.__table__)
_deliveries = cast(Table, Delivery.__table__)


def confirmed_on(
    subscriber_id: ColumnExpressionArgument[Any], list_id: ColumnExpressionArgument[Any]
) -> ColumnElement[bool]:
    """The subscriber's subscription to the list is confirmed: one primary-key lookup."""
    return exists().where(
        _subscriptions.c.subscriber_id == subscriber_id,
        _subscriptions.c.list_id == list_id,
        # The values, not the members: the fence's statement is also run by psycopg directly.
        _subscriptions.c.status == SubscriptionStatus.CONFIRMED.value,
    )


def mailable(
    subscriber_id: ColumnExpressionArgument[Any], campaign_id: ColumnExpressionArgument[Any]
) -> ColumnElement[bool]:
    """THE rule: the subscriber is active and confirmed on at least one of the campaign's lists.

    Both arguments are SQL expressions (a column of the outer query, or a literal). For each of
    the campaign's lists (usually one) it is a primary-key lookup of the subscription, spelled so
    that the database cannot choose to scan a list's whole membership.
    """
    # An alias, so that the lookup never correlates with a ``subscribers`` of the outer query.
    subscriber = _subscribers.alias("mailable_subscriber")
    campaign_list = _campaign_lists.alias("mailable_list")
    active = exists().where(
        subscriber.c.id == subscriber_id,
        subscriber.c.status == SubscriberStatus.ACTIVE.value,
    )
    on_a_campaign_list = exists().where(
        campaign_list.c.campaign_id == campaign_id,
        # SQLAlchemy correlates one level by itself: name the outer tables explicitly.
        confirmed_on(subscriber_id, campaign_list.c.list_id).correlate_except(_subscriptions),
    )
    return and_(active, on_a_campaign_list)


def delivery_mailable() -> ColumnElement[bool]:
    """The rule on a ``deliveries`` row: its subscriber may still be mailed for its campaign."""
    return mailable(_deliveries.c.subscriber_id, _deliveries.c.campaign_id)


def first_mailable_list(
    subscriber_id: ColumnExpressionArgument[Any], campaign_id: ColumnExpressionArgument[Any]
) -> ColumnElement[Any]:
    """The lowest campaign list the subscriber is confirmed on: the one their link leaves."""
    campaign_list = _campaign_lists.alias("first_list")
    return (
        select(func.min(campaign_list.c.list_id))
        .where(
            campaign_list.c.campaign_id == campaign_id,
            confirmed_on(subscriber_id, campaign_list.c.list_id).correlate_except(_subscriptions),
        )
        .scalar_subquery()
    )
